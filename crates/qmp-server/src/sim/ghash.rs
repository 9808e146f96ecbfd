//! The iteration order of a GLib 2.74 string-keyed `GHashTable` (Debian 12's), which is the
//! order QEMU lists an object's own QOM properties (its children) in: QEMU keeps them in such
//! a table and `qom-list` prepends each one it iterates, so the reply shows them reversed.
//!
//! The table is open-addressed: `size` buckets (a power of two, at least 8), a home bucket
//! `(hash * 11) % mod` with `mod` the prime below `size`, quadratic probing, tombstones left
//! by removals, and a resize (to the power of two above `nnodes * 4 / 3`) when the buckets in
//! use or tombstoned reach `size - size / 16`-ish or the table is under a quarter full. The
//! resize relocates entries in place, bucket by bucket, evicting what it lands on; that too
//! decides the order, so it is emulated step by step. Checked against QEMU 7.2 in the tests.

/// `prime_mod[shift]` of GLib: the modulus for a table of `1 << shift` buckets.
const PRIME_MOD: [u32; 17] =
    [1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521];

const MIN_SHIFT: usize = 3;
const UNUSED: u32 = 0;
const TOMBSTONE: u32 = 1;

/// A set of names in GLib's bucket order.
#[derive(Debug, Clone)]
pub(crate) struct HashOrder {
    hashes: Vec<u32>,
    keys: Vec<Option<String>>,
    nnodes: usize,
    noccupied: usize,
    modulus: u32,
}

impl Default for HashOrder {
    fn default() -> Self {
        let mut t = HashOrder { hashes: Vec::new(), keys: Vec::new(), nnodes: 0, noccupied: 0, modulus: 0 };
        t.set_shift(MIN_SHIFT);
        t.hashes = vec![UNUSED; 1 << MIN_SHIFT];
        t.keys = vec![None; 1 << MIN_SHIFT];
        t
    }
}

/// `g_str_hash`: djb2 over the bytes as signed chars; 0 and 1 are reserved markers.
fn str_hash(key: &str) -> u32 {
    let h = key.bytes().fold(5381u32, |h, c| h.wrapping_mul(33).wrapping_add(c as i8 as u32));
    h.max(2)
}

impl HashOrder {
    fn set_shift(&mut self, shift: usize) {
        self.modulus = PRIME_MOD[shift.min(PRIME_MOD.len() - 1)];
    }

    fn mask(&self) -> usize {
        self.hashes.len() - 1
    }

    fn home(&self, hash: u32) -> usize {
        (hash.wrapping_mul(11) % self.modulus) as usize
    }

    /// The bucket holding `key`, or where it would go (the first tombstone met, else the
    /// unused bucket that ended the probe).
    fn lookup(&self, key: &str, hash: u32) -> (usize, bool) {
        let mut index = self.home(hash);
        let mut step = 0;
        let mut tombstone = None;
        while self.hashes[index] != UNUSED {
            if self.hashes[index] == hash && self.keys[index].as_deref() == Some(key) {
                return (index, true);
            }
            if self.hashes[index] == TOMBSTONE && tombstone.is_none() {
                tombstone = Some(index);
            }
            step += 1;
            index = (index + step) & self.mask();
        }
        (tombstone.unwrap_or(index), false)
    }

    /// Adds `key` (nothing happens when it is there already).
    pub fn insert(&mut self, key: &str) {
        let hash = str_hash(key);
        let (index, found) = self.lookup(key, hash);
        if found {
            return;
        }
        let was_unused = self.hashes[index] == UNUSED;
        self.hashes[index] = hash;
        self.keys[index] = Some(key.to_string());
        self.nnodes += 1;
        if was_unused {
            self.noccupied += 1;
            self.maybe_resize();
        }
    }

    /// Removes `key` (nothing happens when it is absent).
    pub fn remove(&mut self, key: &str) {
        let (index, found) = self.lookup(key, str_hash(key));
        if !found {
            return;
        }
        self.hashes[index] = TOMBSTONE;
        self.keys[index] = None;
        self.nnodes -= 1;
        self.maybe_resize();
    }

    /// The keys in bucket order (GLib's iteration order).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.keys.iter().flatten().map(String::as_str)
    }

    fn maybe_resize(&mut self) {
        let size = self.hashes.len();
        let (occupied, nodes) = (self.noccupied, self.nnodes);
        if (size > nodes * 4 && size > 1 << MIN_SHIFT) || size <= occupied + occupied / 16 {
            self.resize();
        }
    }

    fn resize(&mut self) {
        let old_size = self.hashes.len();
        // GLib computes `nnodes * 1.333` as a double and truncates it.
        let want = (self.nnodes as f64 * 1.333) as usize;
        let shift = (usize::BITS - want.leading_zeros()) as usize;
        let shift = shift.max(MIN_SHIFT);
        self.set_shift(shift);
        let new_size = 1usize << shift;
        if new_size > old_size {
            self.hashes.resize(new_size, UNUSED);
            self.keys.resize(new_size, None);
        }
        let mut moved = vec![false; new_size.max(old_size)];
        let mask = new_size - 1;
        for i in 0..old_size {
            let node_hash = self.hashes[i];
            if node_hash <= TOMBSTONE {
                self.hashes[i] = UNUSED;
                continue;
            }
            if moved[i] {
                continue;
            }
            self.hashes[i] = UNUSED;
            let mut key = self.keys[i].take();
            let mut hash = node_hash;
            loop {
                let mut index = self.home(hash);
                let mut step = 0;
                while moved[index] {
                    step += 1;
                    index = (index + step) & mask;
                }
                moved[index] = true;
                let replaced = self.hashes[index];
                self.hashes[index] = hash;
                let evicted = std::mem::replace(&mut self.keys[index], key);
                if replaced <= TOMBSTONE {
                    break;
                }
                hash = replaced;
                key = evicted;
            }
        }
        if new_size < old_size {
            self.hashes.truncate(new_size);
            self.keys.truncate(new_size);
        }
        self.noccupied = self.nnodes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `qom-list /objects` showed on QEMU 7.2 (names after `type`) after each step of
    /// adding iothreads, then deleting some, then adding again.
    #[test]
    fn matches_qemu_object_order() {
        let adds = ["io0", "zeta", "disk1", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
        let mut t = HashOrder::default();
        for k in adds {
            t.insert(k);
        }
        let listed = |t: &HashOrder| t.iter().rev().collect::<Vec<_>>().join(" ");
        assert_eq!(listed(&t), "k l i c j d disk1 e g f io0 zeta a h b");
        for k in ["m", "n", "o", "p", "q"] {
            t.insert(k);
        }
        assert_eq!(listed(&t), "f io0 c q n k h e zeta b p m j g d disk1 a o l i");
        for k in ["c", "zeta", "k", "l", "m", "n", "o", "p", "q", "j", "i"] {
            t.remove(k);
        }
        assert_eq!(listed(&t), "f io0 h e b g d disk1 a");
        t.insert("new1");
        t.insert("c");
        assert_eq!(listed(&t), "f io0 c h e new1 b g d disk1 a");
    }

    #[test]
    fn small_tables() {
        let mut t = HashOrder::default();
        for k in ["io0", "zeta", "disk1", "a", "b", "c", "d"] {
            t.insert(k);
        }
        assert_eq!(t.iter().rev().collect::<Vec<_>>(), ["c", "a", "io0", "zeta", "disk1", "b", "d"]);
        t.insert("e");
        assert_eq!(t.iter().rev().collect::<Vec<_>>(), ["c", "d", "disk1", "e", "io0", "zeta", "a", "b"]);
    }
}
