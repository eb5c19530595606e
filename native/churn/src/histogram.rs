//! Connect latencies, kept per client thread and merged at each sample.

/// Connect latency, log-linear: 32 buckets per power of two (3% precision), fixed size.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    pub total: u64,
    pub max: u64,
}

const SUB: u32 = 5;

impl Histogram {
    pub fn new() -> Self {
        Histogram { counts: vec![0; ((64 - SUB) << SUB) as usize], total: 0, max: 0 }
    }
    fn index(v: u64) -> usize {
        if v < (1 << SUB) {
            return v as usize;
        }
        let e = 63 - v.leading_zeros();
        ((((e - SUB + 1) << SUB) as u64) + ((v >> (e - SUB)) & ((1 << SUB) - 1))) as usize
    }
    /// The largest value a bucket holds.
    fn upper(i: usize) -> u64 {
        if i < (1 << SUB) {
            return i as u64;
        }
        let e = (i as u32 >> SUB) + SUB - 1;
        let m = (i as u64) & ((1 << SUB) - 1);
        (((1 << SUB) + m + 1) << (e - SUB)) - 1
    }
    pub fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }
    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.total += o.total;
        self.max = self.max.max(o.max);
    }
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Self::upper(i).min(self.max);
            }
        }
        self.max
    }
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
        self.max = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn buckets_hold_their_values() {
        for v in [0u64, 1, 31, 32, 33, 63, 64, 100, 1000, 123_456, 1 << 40] {
            let i = Histogram::index(v);
            assert!(Histogram::upper(i) >= v, "{v}");
            assert!(i == 0 || Histogram::upper(i - 1) < v, "{v}");
        }
    }
}
