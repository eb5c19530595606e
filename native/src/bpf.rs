//! nettrace's BPF object as its generated skeleton (skel.rs) opens and loads
//! it, kept together with the memory the skeleton lives in.
//!
//! A libbpf-rs skeleton borrows that memory for as long as it lives, while a
//! tracer moves its loaded object to the drain thread, which drops it (and so
//! detaches everything) when tracing stops: `Bpf` owns both, and drops the
//! skeleton before the memory.

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Object, OpenObject};

use crate::skel::{NettraceMaps, NettraceSkel, NettraceSkelBuilder, OpenNettraceSkel};

/// Heap memory a skeleton's object is written into; freed without dropping
/// what it holds, which the skeleton itself drops.
struct Storage(NonNull<MaybeUninit<OpenObject>>);

// Only an allocation: whatever it holds belongs to the skeleton, which is Send.
unsafe impl Send for Storage {}

impl Storage {
    fn new() -> Storage {
        Storage(NonNull::from(Box::leak(Box::new(MaybeUninit::uninit()))))
    }

    /// SAFETY: whatever borrows the memory must be dropped before this Storage.
    unsafe fn borrow(&self) -> &'static mut MaybeUninit<OpenObject> {
        unsafe { &mut *self.0.as_ptr() }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// The object opened from the embedded ELF, not yet loaded: maps sized, programs chosen, settings written.
///
/// The skeleton is only lent out, never with the `'static` it is stored with
/// (which stands for "as long as `storage`"), so nothing of it outlives this.
pub struct OpenBpf {
    // declared before `storage`, so dropped before it
    skel: OpenNettraceSkel<'static>,
    storage: Storage,
}

impl OpenBpf {
    pub fn open() -> libbpf_rs::Result<OpenBpf> {
        let storage = Storage::new();
        // SAFETY: the skeleton is dropped before `storage`, here on failure and in OpenBpf and Bpf after
        let skel = NettraceSkelBuilder::default().open(unsafe { storage.borrow() })?;
        Ok(OpenBpf { skel, storage })
    }

    /// Lends the skeleton to `f`, to size maps, choose programs and write settings.
    pub fn configure<R>(&mut self, f: impl FnOnce(&mut OpenNettraceSkel<'_>) -> R) -> R {
        f(&mut self.skel)
    }

    pub fn load(self) -> libbpf_rs::Result<Bpf> {
        let OpenBpf { skel, storage } = self;
        let skel = skel.load()?;
        Ok(Bpf { skel, _storage: storage })
    }
}

/// The loaded object: dropping it unloads and detaches every program of it.
pub struct Bpf {
    // declared before `_storage`, so dropped before it
    skel: NettraceSkel<'static>,
    _storage: Storage,
}

impl Bpf {
    /// The object's maps, by their names in the object, for no longer than this lives.
    pub fn maps(&self) -> &NettraceMaps<'_> {
        &self.skel.maps
    }

    pub fn object(&self) -> &Object {
        self.skel.object()
    }

    pub fn object_mut(&mut self) -> &mut Object {
        self.skel.object_mut()
    }
}
