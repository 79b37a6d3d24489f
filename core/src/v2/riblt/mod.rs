//! Rateless invertible Bloom lookup tables (Yang, Gilad, Alizadeh, "Practical Rateless Set
//! Reconciliation", SIGCOMM 2024).
//!
//! # Why
//!
//! Range-based reconciliation needs about `log_f(n / d)` round trips to find `d` differences
//! among `n` items. A rateless IBLT finds them in **one**: the sender streams *coded
//! symbols* computed from its set; the receiver subtracts its own set's symbols and *peels*
//! the result, and after about 1.35–1.7·d symbols (the paper's Figure 4; this crate's
//! measurements are in `docs/sync-v2.md` §4.3) it knows every item only one side holds. The
//! sender need not know `d`: symbols form an infinite stream and the receiver says when it has
//! enough.
//!
//! # The construction
//!
//! Items are 32-byte strings ([`Item`]). A coded symbol ([`CodedSymbol`]) is the XOR of the
//! items mapped to it, the XOR of their 64-bit checksums, and how many there are. Each item
//! maps to symbol 0 and then to an increasing sequence of indices with density about
//! `1 / (1 + i/2)` at index `i` (the paper's §4.2, α = 0.5), generated from a 64-bit seed by
//! the integer procedure in [`Mapping`] — integers only, so every platform produces the same
//! indices. Checksum and seed come from a BLAKE3 hash of the item **keyed per connection**
//! ([`Hasher`]): an adversary who prepares items in advance (a writer grinding entries so that
//! their symbols never become pure) cannot know the key, which is fresh per connection.
//!
//! # Bounds
//!
//! A [`Decoder`] is fed symbols from a peer, so it trusts nothing: it holds at most
//! [`Limits::max_symbols`] symbols and reports at most [`Limits::max_items`] items (beyond
//! either it returns an error); every peeled item must be new and on the side its sign claims
//! (a remote item must not be local, a local one must be), else [`RibltError::Inconsistent`].
//! Each peel records one new item, so peeling ends; the work per received symbol is bounded by
//! the items mapped to it plus, per peeled item, its indices below the symbols received
//! (about `2·ln(symbols)`).

use std::{cmp::Reverse, collections::BinaryHeap};

#[cfg(test)]
mod tests;

/// Length of an [`Item`] in bytes.
pub const ITEM_LEN: usize = 32;

/// An item of a reconciled set: an entry's item hash (phase 2) or a document item (phase 1).
pub type Item = [u8; ITEM_LEN];

/// The multiplier of the mapping's 64-bit multiplicative generator (as in the paper's
/// reference implementation).
pub const MAPPING_MULTIPLIER: u64 = 0xda94_2042_e4dd_58b5;

/// One coded symbol, as it travels: XOR of items, XOR of their checksums, number of items.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub struct CodedSymbol {
    /// XOR of the items mapped to this symbol.
    pub sum: Item,
    /// XOR of their checksums.
    pub checksum: u64,
    /// How many items of the sender's set map to this symbol (always below 2^63).
    pub count: u64,
}

/// The keyed hash of items: 64-bit checksum and 64-bit mapping seed.
#[derive(Clone, Debug)]
pub struct Hasher {
    key: [u8; 32],
}

impl Hasher {
    /// A hasher under `key` (a connection's [`riblt_key`](crate::v2::ConnectionKey::riblt_key)).
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// The key (a runtime hands it to the store's document sessions).
    pub fn key(&self) -> [u8; 32] {
        self.key
    }

    /// `h = keyed_hash(key, item)`: checksum = `h[0..8]` and seed = `h[8..16]`, both
    /// little-endian.
    pub fn hash(&self, item: &Item) -> (u64, u64) {
        let h = blake3::keyed_hash(&self.key, item);
        let b = h.as_bytes();
        let mut c = [0u8; 8];
        let mut s = [0u8; 8];
        c.copy_from_slice(&b[..8]);
        s.copy_from_slice(&b[8..16]);
        (u64::from_le_bytes(c), u64::from_le_bytes(s))
    }

    /// The checksum alone.
    pub fn checksum(&self, item: &Item) -> u64 {
        self.hash(item).0
    }
}

/// The index sequence of one item: 0, then each next index from the last one.
///
/// ```text
/// prng  ← prng · 0xda942042e4dd58b5 (mod 2^64)        (prng starts at the item's seed)
/// s     ← max(1, ⌊√prng⌋)                              (1 ≤ s < 2^32)
/// gap   ← ⌈(2·last + 3) · (2^32 − s) / (2·s)⌉          (≥ 1; 128-bit arithmetic)
/// last  ← last + gap                                   (saturating at 2^64 − 1)
/// ```
///
/// This is the reference implementation's `last + ⌈(last + 1.5)·(2^32/√r − 1)⌉` with the
/// square root and division done in integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    prng: u64,
    last: u64,
}

impl Mapping {
    /// The mapping of an item with this seed, positioned at index 0.
    pub fn new(seed: u64) -> Self {
        Self {
            prng: seed,
            last: 0,
        }
    }

    /// The current index.
    pub fn index(&self) -> u64 {
        self.last
    }

    /// Advances to and returns the next index.
    pub fn next_index(&mut self) -> u64 {
        self.prng = self.prng.wrapping_mul(MAPPING_MULTIPLIER);
        let s = isqrt(self.prng).max(1);
        // Below 2^31 − 2 the product fits 64 bits (the common case, and much cheaper than a
        // 128-bit division); the result is the same.
        let gap = if self.last < (1 << 31) - 2 {
            u128::from(((2 * self.last + 3) * ((1u64 << 32) - s)).div_ceil(2 * s))
        } else {
            let s = u128::from(s);
            ((2 * u128::from(self.last) + 3) * ((1u128 << 32) - s)).div_ceil(2 * s)
        };
        self.last = self
            .last
            .saturating_add(u64::try_from(gap).unwrap_or(u64::MAX));
        self.last
    }
}

/// `⌊√x⌋`, exactly: from the floating-point root (off by at most one), corrected. About
/// twice as fast as `u64::isqrt`, and the mapping takes one per step (the test
/// `isqrt_is_exact` compares both).
fn isqrt(x: u64) -> u64 {
    const MAX: u64 = u32::MAX as u64;
    let mut r = ((x as f64).sqrt() as u64).min(MAX);
    while r * r > x {
        r -= 1;
    }
    while r < MAX && (r + 1) * (r + 1) <= x {
        r += 1;
    }
    r
}

/// A symbol under construction or being peeled (signed count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Cell {
    sum: Item,
    checksum: u64,
    count: i64,
}

impl Cell {
    fn apply(&mut self, item: &Item, checksum: u64, sign: i64) {
        for (s, b) in self.sum.iter_mut().zip(item) {
            *s ^= b;
        }
        self.checksum ^= checksum;
        self.count = self.count.wrapping_add(sign);
    }

    fn is_zero(&self) -> bool {
        self.count == 0 && self.checksum == 0 && self.sum == [0; ITEM_LEN]
    }
}

/// One item inside a [`Window`].
#[derive(Clone, Debug)]
struct Slot {
    item: Item,
    checksum: u64,
    mapping: Mapping,
    /// What applying the item adds to a cell's count.
    sign: i64,
}

/// A set of items and, for each, the next symbol index it maps to. Symbols must be visited in
/// index order 0, 1, 2, …
#[derive(Clone, Debug, Default)]
struct Window {
    slots: Vec<Slot>,
    /// (next index, slot) of every slot, smallest index first.
    queue: BinaryHeap<Reverse<(u64, usize)>>,
}

impl Window {
    fn push(&mut self, slot: Slot) {
        let index = slot.mapping.index();
        self.queue.push(Reverse((index, self.slots.len())));
        self.slots.push(slot);
    }

    /// Applies every item that maps to `index` to `cell` and advances those items.
    fn apply(&mut self, index: u64, cell: &mut Cell) {
        while let Some(&Reverse((next, slot))) = self.queue.peek() {
            if next != index {
                debug_assert!(next > index, "window visited out of order");
                return;
            }
            self.queue.pop();
            let s = &mut self.slots[slot];
            cell.apply(&s.item, s.checksum, s.sign);
            let after = s.mapping.next_index();
            self.queue.push(Reverse((after, slot)));
        }
    }
}

/// A large set (an encoder's, a decoder's local one) applied to symbols a batch at a time:
/// one pass over its items per batch, each applied to the batch's symbols it maps to. For
/// the first symbols, to which most items map, this is sequential work where a [`Window`]'s
/// heap costs a pop and a push per application (100,000 items, 64 symbols: ~100 ms through
/// the heap, a few ms in one pass).
#[derive(Clone, Debug, Default)]
struct Bulk {
    slots: Vec<Slot>,
}

impl Bulk {
    fn new(hasher: &Hasher, items: &[Item], sign: i64) -> Self {
        let slots = items
            .iter()
            .map(|item| {
                let (checksum, seed) = hasher.hash(item);
                Slot {
                    item: *item,
                    checksum,
                    mapping: Mapping::new(seed),
                    sign,
                }
            })
            .collect();
        Self { slots }
    }

    /// Applies every item to the cells `start, start + 1, …` it maps to; the cells before
    /// `start` must have been visited by earlier batches.
    fn apply_batch(&mut self, start: u64, cells: &mut [Cell]) {
        let end = start + cells.len() as u64;
        // Each item's indices form a chain of dependent steps (a square root and a division
        // each); advancing `LANES` items side by side lets the processor overlap their chains
        // (100,000 items, 320 symbols: 23.5 → 13.5 ms in release, best of 15). XOR and
        // addition commute, so the order of applications does not change the cells.
        const LANES: usize = 8;
        const IDLE: usize = usize::MAX;
        let n = self.slots.len();
        let mut lanes = [IDLE; LANES];
        let mut loaded = 0;
        for lane in &mut lanes {
            if loaded < n {
                *lane = loaded;
                loaded += 1;
            }
        }
        let mut busy = lanes.iter().filter(|&&l| l != IDLE).count();
        while busy > 0 {
            for lane in &mut lanes {
                if *lane == IDLE {
                    continue;
                }
                let s = &mut self.slots[*lane];
                let index = s.mapping.index();
                debug_assert!(index >= start, "batches visited out of order");
                if index < end {
                    cells[(index - start) as usize].apply(&s.item, s.checksum, s.sign);
                    s.mapping.next_index();
                } else if loaded < n {
                    *lane = loaded;
                    loaded += 1;
                } else {
                    *lane = IDLE;
                    busy -= 1;
                }
            }
        }
    }
}

/// Sorted, deduplicated items.
fn sorted_set(items: impl IntoIterator<Item = Item>) -> Vec<Item> {
    let mut v: Vec<Item> = items.into_iter().collect();
    // Byte order, compared by the first 8 bytes as a big-endian integer first (the same
    // order, ~3× faster than comparing arrays byte by byte).
    let head = |x: &Item| u64::from_be_bytes(x[..8].try_into().expect("8 bytes"));
    v.sort_unstable_by(|a, b| head(a).cmp(&head(b)).then_with(|| a.cmp(b)));
    v.dedup();
    v
}

/// Produces the coded-symbol stream of a set, one symbol at a time.
#[derive(Clone, Debug)]
pub struct Encoder {
    set: Bulk,
    next: u64,
}

impl Encoder {
    /// An encoder over the set of `items` (duplicates count once), positioned at symbol 0.
    pub fn new(hasher: &Hasher, items: impl IntoIterator<Item = Item>) -> Self {
        Self {
            set: Bulk::new(hasher, &sorted_set(items), 1),
            next: 0,
        }
    }

    /// Number of items in the set.
    pub fn len(&self) -> usize {
        self.set.slots.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.set.slots.is_empty()
    }

    /// Index of the symbol [`next_symbol`](Self::next_symbol) returns.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// The next coded symbol (a pass over the set: ask for symbols in batches with
    /// [`next_symbols`](Self::next_symbols)).
    pub fn next_symbol(&mut self) -> CodedSymbol {
        self.next_symbols(1)[0]
    }

    /// The next `n` coded symbols, in one pass over the set.
    pub fn next_symbols(&mut self, n: usize) -> Vec<CodedSymbol> {
        let mut cells = vec![Cell::default(); n];
        self.set.apply_batch(self.next, &mut cells);
        self.next += n as u64;
        cells
            .into_iter()
            .map(|cell| CodedSymbol {
                sum: cell.sum,
                checksum: cell.checksum,
                count: cell.count as u64,
            })
            .collect()
    }
}

/// What a [`Decoder`] accepts before it gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most symbols held (a symbol costs 56 bytes of memory).
    pub max_symbols: u64,
    /// Most items reported, both sides together.
    pub max_items: usize,
}

impl Default for Limits {
    /// 65,536 symbols and as many items (about 3.5 MiB of symbols at most).
    fn default() -> Self {
        Self {
            max_symbols: 1 << 16,
            max_items: 1 << 16,
        }
    }
}

/// Why a [`Decoder`] stopped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RibltError {
    /// More symbols than [`Limits::max_symbols`].
    #[error("more than {max} coded symbols")]
    TooManySymbols {
        /// The limit.
        max: u64,
    },
    /// More decoded items than [`Limits::max_items`].
    #[error("more than {max} decoded items")]
    TooManyItems {
        /// The limit.
        max: usize,
    },
    /// Symbols given out of order.
    #[error("symbol {got} given where symbol {expected} was due")]
    OutOfOrder {
        /// The index the decoder expected.
        expected: u64,
        /// The index it was given.
        got: u64,
    },
    /// A symbol count of 2^63 or more.
    #[error("symbol count {0} out of range")]
    BadCount(u64),
    /// The symbols cannot come from any set: an item decoded twice, a remote item that is
    /// local, or a local item that is not.
    #[error("inconsistent symbols: {0}")]
    Inconsistent(&'static str),
}

/// Which side of the difference a decoded item is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// Only the remote (the encoding peer) holds it.
    Remote,
    /// Only the local set holds it.
    Local,
}

/// Decodes a peer's coded-symbol stream against the local set.
#[derive(Clone, Debug)]
pub struct Decoder {
    hasher: Hasher,
    limits: Limits,
    /// The local set, sorted (for membership checks).
    local_items: Vec<Item>,
    /// The local set, subtracted from every received symbol.
    local: Bulk,
    /// Items decoded so far, removed from every symbol received later.
    decoded: Window,
    /// Received symbols minus the local set minus the decoded items.
    cells: Vec<Cell>,
    /// Received symbols minus the local set (for [`estimate_difference`](Self::estimate_difference)).
    residual_counts: Vec<i64>,
    /// Cells that may have become pure.
    pending: Vec<usize>,
    /// Decoded items, in decoding order.
    found: Vec<(Item, Side)>,
    /// The same, sorted by item, for duplicate checks.
    found_sorted: std::collections::BTreeSet<Item>,
    failed: Option<RibltError>,
}

impl Decoder {
    /// A decoder for a remote stream against the `local` set.
    pub fn new(hasher: Hasher, limits: Limits, local: impl IntoIterator<Item = Item>) -> Self {
        let local_items = sorted_set(local);
        let local = Bulk::new(&hasher, &local_items, -1);
        Self {
            hasher,
            limits,
            local_items,
            local,
            decoded: Window::default(),
            cells: Vec::new(),
            residual_counts: Vec::new(),
            pending: Vec::new(),
            found: Vec::new(),
            found_sorted: Default::default(),
            failed: None,
        }
    }

    /// Number of symbols received.
    pub fn symbols_received(&self) -> u64 {
        self.cells.len() as u64
    }

    /// Whether every difference has been found: symbol 0, which every item maps to, has been
    /// peeled to nothing. (A false "done" needs the undecoded items to cancel in count, in 256
    /// bits of sum and in 64 bits of keyed checksum.)
    pub fn is_done(&self) -> bool {
        self.failed.is_none() && self.cells.first().is_some_and(Cell::is_zero)
    }

    /// Items only the remote holds, in decoding order.
    pub fn remote_only(&self) -> impl Iterator<Item = &Item> {
        self.found
            .iter()
            .filter(|(_, s)| *s == Side::Remote)
            .map(|(i, _)| i)
    }

    /// Items only the local set holds, in decoding order.
    pub fn local_only(&self) -> impl Iterator<Item = &Item> {
        self.found
            .iter()
            .filter(|(_, s)| *s == Side::Local)
            .map(|(i, _)| i)
    }

    /// Every decoded item with its side, in decoding order.
    pub fn decoded(&self) -> &[(Item, Side)] {
        &self.found
    }

    /// Adds symbols `start, start + 1, …` (the local set subtracted in one pass over it) and
    /// peels after each; `start` must be [`symbols_received`](Self::symbols_received).
    ///
    /// After an error the decoder is spent: every later call returns the same error.
    pub fn add_symbols(&mut self, start: u64, symbols: &[CodedSymbol]) -> Result<(), RibltError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if start != self.symbols_received() {
            return Err(RibltError::OutOfOrder {
                expected: self.symbols_received(),
                got: start,
            });
        }
        let result = self.add_batch(symbols);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    /// Adds the next symbol and peels what it makes decodable (a pass over the local set:
    /// add symbols in batches with [`add_symbols`](Self::add_symbols)).
    ///
    /// After an error the decoder is spent: every later call returns the same error.
    pub fn add_symbol(&mut self, symbol: CodedSymbol) -> Result<(), RibltError> {
        self.add_symbols(self.symbols_received(), &[symbol])
    }

    fn add_batch(&mut self, symbols: &[CodedSymbol]) -> Result<(), RibltError> {
        // The symbols up to the first one refused, which are added before the error.
        let room = self
            .limits
            .max_symbols
            .saturating_sub(self.symbols_received());
        let mut refused = None;
        let mut cells = Vec::with_capacity(symbols.len().min(room as usize));
        for (k, symbol) in symbols.iter().enumerate() {
            if k as u64 >= room {
                refused = Some(RibltError::TooManySymbols {
                    max: self.limits.max_symbols,
                });
                break;
            }
            match i64::try_from(symbol.count) {
                Ok(count) => cells.push(Cell {
                    sum: symbol.sum,
                    checksum: symbol.checksum,
                    count,
                }),
                Err(_) => {
                    refused = Some(RibltError::BadCount(symbol.count));
                    break;
                }
            }
        }
        self.local.apply_batch(self.symbols_received(), &mut cells);
        for cell in cells {
            self.add_inner(cell)?;
        }
        refused.map_or(Ok(()), Err)
    }

    /// Adds the next symbol, the local set already subtracted, and peels.
    fn add_inner(&mut self, mut cell: Cell) -> Result<(), RibltError> {
        let index = self.symbols_received();
        self.residual_counts.push(cell.count);
        self.decoded.apply(index, &mut cell);
        self.cells.push(cell);
        self.pending.push(index as usize);
        self.peel()
    }

    fn is_pure(&self, cell: &Cell) -> bool {
        (cell.count == 1 || cell.count == -1) && self.hasher.checksum(&cell.sum) == cell.checksum
    }

    fn peel(&mut self) -> Result<(), RibltError> {
        while let Some(i) = self.pending.pop() {
            let cell = self.cells[i];
            if !self.is_pure(&cell) {
                continue;
            }
            let item = cell.sum;
            let side = if cell.count == 1 {
                Side::Remote
            } else {
                Side::Local
            };
            let is_local = self.local_items.binary_search(&item).is_ok();
            match side {
                Side::Remote if is_local => {
                    return Err(RibltError::Inconsistent("a remote-only item is local"))
                }
                Side::Local if !is_local => {
                    return Err(RibltError::Inconsistent("a local-only item is not local"))
                }
                _ => {}
            }
            if self.found.len() >= self.limits.max_items {
                return Err(RibltError::TooManyItems {
                    max: self.limits.max_items,
                });
            }
            if !self.found_sorted.insert(item) {
                return Err(RibltError::Inconsistent("an item decoded twice"));
            }
            self.found.push((item, side));
            // Remove the item from every symbol received so far, then from later ones.
            let (checksum, seed) = self.hasher.hash(&item);
            let sign = -cell.count;
            let mut mapping = Mapping::new(seed);
            let received = self.symbols_received();
            let mut j = 0;
            while j < received {
                self.cells[j as usize].apply(&item, checksum, sign);
                self.pending.push(j as usize);
                j = mapping.next_index();
            }
            self.decoded.push(Slot {
                item,
                checksum,
                mapping,
                sign,
            });
        }
        Ok(())
    }

    /// An estimate of the size of the symmetric difference from the symbols so far, for
    /// choosing between more symbols and range splits (never on the wire).
    ///
    /// Symbol 0 holds every item, so its residual count is exactly `δ = |R∖L| − |L∖R|`. At
    /// index `i ≥ 1` each of the `d` differing items is present with probability
    /// `p_i ≈ 1/(1 + i/2)`, so `E[c_i²] = d·p_i + p_i²·(δ² − d)`; summing over the symbols
    /// received gives a moment estimator of `d`. The result is at least `|δ|` and at least the
    /// number of items decoded.
    pub fn estimate_difference(&self) -> u64 {
        let Some(&delta) = self.residual_counts.first() else {
            return 0;
        };
        let delta2 = (delta as f64) * (delta as f64);
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for (i, &c) in self.residual_counts.iter().enumerate().skip(1) {
            let p = 1.0 / (1.0 + i as f64 / 2.0);
            num += (c as f64) * (c as f64) - p * p * delta2;
            den += p - p * p;
        }
        let est = if den > 0.0 { (num / den).max(0.0) } else { 0.0 };
        (est.round() as u64)
            .max(delta.unsigned_abs())
            .max(self.found.len() as u64)
    }
}
