//! The BPF object's load-time settings: its `const volatile` globals, written
//! into the object's .rodata before load. Each is found by name in the
//! object's own BTF, with its offset and size, so no offset is kept by hand;
//! after load the kernel holds them read-only and the verifier prunes what
//! they turn off.

use libbpf_rs::btf::types::{DataSec, Var};
use libbpf_rs::btf::Btf;
use libbpf_rs::OpenObject;

/// Record kinds, as `enum nt_kind` numbers them; `1 << kind` is a kind's bit in `nt_events`.
pub const EVENT_KINDS: &[(&str, u32)] = &[("state", 1), ("connect", 2), ("accept", 3), ("close", 4), ("udp", 5), ("dns", 6)];

/// Kinds sent unless the caller names its own: all but dns, whose hooks run per packet (asked for, like steering).
pub fn default_events() -> u32 {
    EVENT_KINDS.iter().filter(|(n, _)| *n != "dns").fold(0, |m, (_, k)| m | event_bit(*k))
}

pub fn event_bit(kind: u32) -> u32 {
    1 << kind
}

/// Writes each (name, bytes) into the .rodata of `open`, whose ELF image is `elf`.
pub fn write(open: &mut OpenObject, elf: &[u8], values: &[(&str, Vec<u8>)]) -> Result<(), String> {
    let btf = Btf::from_raw("nettrace", elf)
        .map_err(|e| format!("cannot read the BPF object's BTF: {e}"))?
        .ok_or("the BPF object has no BTF")?;
    let sec: DataSec = btf.type_by_name(".rodata").ok_or("the BPF object has no .rodata section")?;
    let mut places = Vec::new();
    for (name, bytes) in values {
        let place = sec.iter().find(|v| {
            btf.type_by_id::<Var>(v.ty).and_then(|var| var.name()).is_some_and(|n| n == *name)
        });
        match place {
            Some(v) if v.size == bytes.len() => places.push((v.offset as usize, bytes)),
            Some(v) => return Err(format!("setting {name} is {} bytes in the BPF object, not {}", v.size, bytes.len())),
            None => return Err(format!("the BPF object has no setting {name}")),
        }
    }
    let mut map = open.maps_mut().find(|m| m.name().to_string_lossy().ends_with(".rodata")).ok_or("the BPF object has no .rodata map")?;
    let data = map.initial_value_mut().ok_or("the BPF object's .rodata has no initial value")?;
    for (offset, bytes) in places {
        data.get_mut(offset..offset + bytes.len()).ok_or("a setting lies outside .rodata")?.copy_from_slice(bytes);
    }
    Ok(())
}
