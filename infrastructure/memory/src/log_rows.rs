//! The event log's rows, kept densely by log position.
//!
//! Log positions come from a counter that only grows (from 1); a batch that
//! is undone leaves its positions unused, as a SQL sequence does. A
//! `BTreeMap<i64, DomainEvent>` kept each event inline in nodes filled to
//! about half by appends at the end, ~700 bytes an event for a 376-byte
//! value; here every position is one slot of a fixed-size chunk, and a
//! chunk, once allocated, never moves (no copy of the whole log as it grows).

/// Slots per chunk.
const CHUNK: usize = 1024;

/// Rows by a position that counts from 1: a slot per position up to the
/// highest stored, `None` where nothing is (a position of an undone batch).
#[derive(Debug)]
pub(crate) struct LogRows<T> {
    /// Chunk `c` holds positions `c * CHUNK + 1 ..= (c + 1) * CHUNK`; each is
    /// allocated with room for `CHUNK` slots and filled from its start.
    chunks: Vec<Vec<Option<T>>>,
}

impl<T> Default for LogRows<T> {
    fn default() -> Self {
        Self { chunks: Vec::new() }
    }
}

/// The chunk and the slot within it of `position`; `None` below 1.
fn place(position: i64) -> Option<(usize, usize)> {
    let index = usize::try_from(position.checked_sub(1)?).ok()?;
    Some((index / CHUNK, index % CHUNK))
}

impl<T> LogRows<T> {
    /// Stores `row` at `position`, returning the row that was there. A
    /// position below 1 stores nothing: the row is handed back as `Err`.
    pub(crate) fn insert(&mut self, position: i64, row: T) -> Result<Option<T>, T> {
        let Some((chunk, slot)) = place(position) else {
            return Err(row);
        };
        while self.chunks.len() <= chunk {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let Some(slots) = self.chunks.get_mut(chunk) else {
            return Err(row);
        };
        while slots.len() <= slot {
            slots.push(None);
        }
        Ok(slots.get_mut(slot).and_then(|s| s.replace(row)))
    }

    /// The row at `position`.
    pub(crate) fn get(&self, position: i64) -> Option<&T> {
        let (chunk, slot) = place(position)?;
        self.chunks.get(chunk)?.get(slot)?.as_ref()
    }

    /// Takes the row at `position` out; its slot stays, empty.
    pub(crate) fn remove(&mut self, position: i64) -> Option<T> {
        let (chunk, slot) = place(position)?;
        self.chunks.get_mut(chunk)?.get_mut(slot)?.take()
    }

    /// The rows at positions from `first` on, in order, with their positions.
    pub(crate) fn from(&self, first: i64) -> impl Iterator<Item = (i64, &T)> {
        let (chunk, slot) = place(first.max(1)).unwrap_or((0, 0));
        self.chunks
            .iter()
            .enumerate()
            .skip(chunk)
            .flat_map(move |(c, slots)| {
                let skip = if c == chunk { slot } else { 0 };
                slots
                    .iter()
                    .enumerate()
                    .skip(skip)
                    .filter_map(move |(s, row)| Some((position_of(c, s), row.as_ref()?)))
            })
    }
}

/// The position of slot `slot` of chunk `chunk`.
fn position_of(chunk: usize, slot: usize) -> i64 {
    i64::try_from(chunk * CHUNK + slot + 1).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_found_by_position_across_chunks() {
        let mut rows = LogRows::default();
        let last = i64::try_from(3 * CHUNK + 5).unwrap();
        for p in 1..=last {
            assert_eq!(rows.insert(p, p * 10), Ok(None));
        }
        assert_eq!(rows.get(1), Some(&10));
        assert_eq!(rows.get(last), Some(&(last * 10)));
        assert_eq!(rows.get(last + 1), None);
        assert_eq!(rows.get(0), None);
        assert_eq!(rows.get(-3), None);
        let from: Vec<i64> = rows.from(1020).map(|(p, _)| p).collect();
        assert_eq!(from.first(), Some(&1020));
        assert_eq!(from.len(), usize::try_from(last - 1019).unwrap());
        assert!(from.windows(2).all(|w| w[1] == w[0] + 1));
        assert!(rows.from(1020).all(|(p, v)| *v == p * 10));
    }

    #[test]
    fn an_undone_position_stays_a_gap_and_nothing_below_one_is_stored() {
        let mut rows = LogRows::default();
        for p in 1..=4 {
            rows.insert(p, p).unwrap();
        }
        assert_eq!(rows.remove(3), Some(3));
        assert_eq!(rows.remove(3), None);
        assert_eq!(rows.remove(99), None);
        rows.insert(5, 5).unwrap();
        // A position well past the end leaves empty slots before it.
        rows.insert(2 * i64::try_from(CHUNK).unwrap(), 7).unwrap();
        let all: Vec<(i64, i64)> = rows.from(0).map(|(p, v)| (p, *v)).collect();
        assert_eq!(
            all,
            vec![
                (1, 1),
                (2, 2),
                (4, 4),
                (5, 5),
                (2 * i64::try_from(CHUNK).unwrap(), 7)
            ]
        );
        assert_eq!(rows.from(3).next(), Some((4, &4)));
        assert_eq!(rows.insert(0, 1), Err(1));
        assert_eq!(rows.insert(2, 20), Ok(Some(2)));
    }
}
