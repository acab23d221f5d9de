//! Where the bytes of served documents live: large bodies in one unlinked
//! file, small ones on the heap.
//!
//! A thousand feeds in three formats and three encodings are about a gigabyte
//! of bytes that change rarely and are read only to be sent. Kept on the heap
//! they are resident memory the kernel can never take back; kept in a file
//! they are page cache, which HTTP/1 responses send with `sendfile(2)` without
//! touching and which the kernel reclaims under pressure (reading it back
//! from disk if a cold feed is fetched again). So every body of at least
//! [`SENDFILE_MIN_BYTES`] is written once into a [`BodyStore`]: a single file,
//! unlinked as it is created, so nothing else can see or change it and it
//! disappears with the process. Regions are page-aligned and reused first-fit;
//! when the last holder of a region lets go, its pages are punched out of the
//! file (`FALLOC_FL_PUNCH_HOLE`), so the disk and page cache it used are freed
//! at once. One file means one descriptor however many feeds there are.
//!
//! This module never decides what to store; it keeps what it is given and
//! hands the bytes back unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

/// Bodies at least this large go to the [`BodyStore`] (and are sent with
/// `sendfile(2)` on HTTP/1); smaller ones cost less to keep and write directly.
pub const SENDFILE_MIN_BYTES: usize = 16 * 1024;

/// Regions start on a page boundary so punching one out frees whole pages.
const PAGE: u64 = 4096;

/// The unlinked file large bodies live in, and which parts of it are free.
#[derive(Debug)]
pub struct BodyStore {
    file: File,
    space: Mutex<Space>,
}

/// Free space: ranges by offset (to merge neighbours) and by size (to find a
/// fit), and the end of the used part of the file.
#[derive(Debug, Default)]
struct Space {
    free_at: BTreeMap<u64, u64>,
    free_by_size: BTreeSet<(u64, u64)>,
    end: u64,
    /// Bytes held by live regions (rounded to pages), for `/healthz`.
    used: u64,
    /// Regions dropped but not yet punched out and reused (see
    /// [`BodyStore::reclaim`]).
    released: Vec<(u64, u64)>,
}

impl Space {
    fn take(&mut self, len: u64) -> u64 {
        if let Some(&(size, at)) = self.free_by_size.range((len, 0)..).next() {
            self.free_by_size.remove(&(size, at));
            self.free_at.remove(&at);
            if size > len {
                self.insert_free(at + len, size - len);
            }
            self.used += len;
            return at;
        }
        let at = self.end;
        self.end += len;
        self.used += len;
        at
    }

    fn give_back(&mut self, mut at: u64, mut len: u64) {
        self.used = self.used.saturating_sub(len);
        // Merge with the free range just before and just after.
        if let Some((&before, &size)) = self.free_at.range(..at).next_back()
            && before + size == at
        {
            self.remove_free(before, size);
            at = before;
            len += size;
        }
        if let Some(&size) = self.free_at.get(&(at + len)) {
            self.remove_free(at + len, size);
            len += size;
        }
        if at + len == self.end {
            self.end = at;
        } else {
            self.insert_free(at, len);
        }
    }

    fn insert_free(&mut self, at: u64, len: u64) {
        self.free_at.insert(at, len);
        self.free_by_size.insert((len, at));
    }

    fn remove_free(&mut self, at: u64, len: u64) {
        self.free_at.remove(&at);
        self.free_by_size.remove(&(len, at));
    }
}

/// How much of a [`BodyStore`] is in use, for `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreUsage {
    /// Bytes held by live bodies, rounded up to pages.
    pub used_bytes: u64,
    /// Length of the file (free holes in it take no disk space).
    pub file_bytes: u64,
}

impl BodyStore {
    /// Creates the store's file in `dir`, unlinked at once. `dir` should be
    /// on a disk-backed filesystem (the output folder is): on tmpfs the
    /// bodies would be in memory again.
    pub fn create(dir: &Path) -> io::Result<Arc<Self>> {
        std::fs::create_dir_all(dir)?;
        Ok(Arc::new(Self {
            file: tempfile::tempfile_in(dir)?,
            space: Mutex::new(Space::default()),
        }))
    }

    fn space(&self) -> std::sync::MutexGuard<'_, Space> {
        // The space map stays consistent at every step; a panic elsewhere
        // holding the lock cannot have broken it.
        self.space.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Copies `bytes` into the store. Blocking (a write to the page cache).
    pub fn put(self: &Arc<Self>, bytes: &[u8]) -> io::Result<Region> {
        let region = self.reserve(bytes.len())?;
        self.file.write_all_at(bytes, region.offset)?;
        Ok(region)
    }

    /// A region of `len` bytes whose content the caller writes through
    /// [`Region::write_at`] (for copying from a file without a heap copy).
    /// Blocking: first reclaims the regions dropped since the last call.
    pub fn reserve(self: &Arc<Self>, len: usize) -> io::Result<Region> {
        self.reclaim();
        let len64 = u64::try_from(len).map_err(|_| io::Error::other("body too large"))?;
        let rounded = len64
            .checked_next_multiple_of(PAGE)
            .ok_or_else(|| io::Error::other("body too large"))?
            .max(PAGE);
        let offset = self.space().take(rounded);
        Ok(Region {
            store: self.clone(),
            offset,
            len: len64,
            rounded,
        })
    }

    /// How many bytes the store holds now, and how long its file is.
    pub fn usage(&self) -> StoreUsage {
        let space = self.space();
        StoreUsage {
            used_bytes: space.used,
            file_bytes: space.end,
        }
    }

    /// Only notes the region: the last holder of a body may be a response
    /// finishing on the async runtime, and punching a hole can wait for
    /// writeback. The work is done by [`BodyStore::reclaim`].
    fn release(&self, offset: u64, rounded: u64) {
        self.space().released.push((offset, rounded));
    }

    /// Punches the dropped regions out of the file (freeing their disk blocks
    /// and page cache) and makes them reusable. Blocking; called before every
    /// reservation, so a store that keeps being written keeps being reclaimed.
    pub fn reclaim(&self) {
        let released = std::mem::take(&mut self.space().released);
        if released.is_empty() {
            return;
        }
        // Outside the lock: the ranges are in no free list yet, so nothing
        // can reuse them while they are punched. Filesystems without hole
        // punching keep the blocks until the range is reused.
        for &(offset, len) in &released {
            let _ = rustix::fs::fallocate(
                &self.file,
                rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
                offset,
                len,
            );
        }
        let mut space = self.space();
        for (offset, len) in released {
            space.give_back(offset, len);
        }
        // Keep the file no longer than what is used. Under the lock: a region
        // taken past the old end just after would be cut.
        let _ = self.file.set_len(space.end);
    }
}

/// Bytes in a [`BodyStore`], freed when dropped.
#[derive(Debug)]
pub struct Region {
    store: Arc<BodyStore>,
    offset: u64,
    len: u64,
    rounded: u64,
}

impl Region {
    /// The body's length in bytes (not rounded up to pages).
    pub fn len(&self) -> usize {
        usize::try_from(self.len).unwrap_or(usize::MAX)
    }

    /// Whether the region holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file and the offset of the bytes in it, for `sendfile(2)`.
    pub fn file_at(&self) -> (&File, u64) {
        (&self.store.file, self.offset)
    }

    /// Writes `bytes` at `at` within the region (see [`BodyStore::reserve`]).
    pub fn write_at(&mut self, bytes: &[u8], at: u64) -> io::Result<()> {
        if at.saturating_add(bytes.len() as u64) > self.len {
            return Err(io::Error::other("write past the end of a region"));
        }
        self.store.file.write_all_at(bytes, self.offset + at)
    }

    /// Reads `buf.len()` bytes from `at` within the region. Blocking.
    pub fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        if at.saturating_add(buf.len() as u64) > self.len {
            return Err(io::Error::other("read past the end of a region"));
        }
        self.store.file.read_exact_at(buf, self.offset + at)
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        self.store.release(self.offset, self.rounded);
    }
}

/// The bytes of one variant: on the heap, or in a [`BodyStore`].
#[derive(Debug, Clone)]
pub enum Body {
    /// On the heap: bodies under [`SENDFILE_MIN_BYTES`], or with no store, or that
    /// the store could not take.
    Memory(Bytes),
    /// In the body store's file, sent with `sendfile(2)`.
    Stored(Arc<Region>),
}

/// Two bodies are equal when their bytes are.
impl PartialEq for Body {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Body::Memory(a), Body::Memory(b)) => a == b,
            (Body::Stored(a), Body::Stored(b)) if Arc::ptr_eq(a, b) => true,
            _ => self.len() == other.len() && self.read().ok() == other.read().ok(),
        }
    }
}

impl Body {
    /// Keeps `bytes` in `store` if they are large enough and a store is
    /// given, else on the heap. A store that cannot take them (disk full)
    /// leaves them on the heap: served all the same.
    pub fn keep(bytes: Bytes, store: Option<&Arc<BodyStore>>) -> Self {
        match store {
            Some(store) if bytes.len() >= SENDFILE_MIN_BYTES => match store.put(&bytes) {
                Ok(region) => Body::Stored(Arc::new(region)),
                Err(e) => {
                    tracing::warn!(error = %e, bytes = bytes.len(),
                        "cannot keep a document body in the body store; keeping it in memory");
                    Body::Memory(bytes)
                }
            },
            _ => Body::Memory(bytes),
        }
    }

    /// The body's length in bytes, wherever it is kept.
    pub fn len(&self) -> usize {
        match self {
            Body::Memory(b) => b.len(),
            Body::Stored(r) => r.len(),
        }
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, copied out of the store if they are there. Blocking for a
    /// stored body: call it off the async runtime.
    pub fn read(&self) -> io::Result<Bytes> {
        match self {
            Body::Memory(b) => Ok(b.clone()),
            Body::Stored(r) => {
                let mut buf = vec![0; r.len()];
                r.read_at(&mut buf, 0)?;
                Ok(Bytes::from(buf))
            }
        }
    }

    /// The bytes if they are on the heap (no I/O).
    pub fn in_memory(&self) -> Option<&Bytes> {
        match self {
            Body::Memory(b) => Some(b),
            Body::Stored(_) => None,
        }
    }

    /// Whether the bytes are in a body store.
    pub fn is_stored(&self) -> bool {
        matches!(self, Body::Stored(_))
    }

    /// Writes the bytes to `out` in chunks, without a heap copy of the whole
    /// body. Blocking.
    pub fn write_to(&self, out: &mut impl io::Write) -> io::Result<()> {
        match self {
            Body::Memory(b) => out.write_all(b),
            Body::Stored(r) => {
                let mut buf = vec![0; CHUNK.min(r.len())];
                let mut at = 0_u64;
                while at < r.len {
                    let n = usize::try_from(r.len - at).unwrap_or(usize::MAX).min(CHUNK);
                    r.read_at(&mut buf[..n], at)?;
                    out.write_all(&buf[..n])?;
                    at += n as u64;
                }
                Ok(())
            }
        }
    }
}

/// Copy buffer for [`Body::write_to`].
const CHUNK: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Arc<BodyStore>) {
        let dir = tempfile::tempdir().expect("dir");
        let store = BodyStore::create(dir.path()).expect("store");
        (dir, store)
    }

    fn bytes(seed: u8, len: usize) -> Bytes {
        Bytes::from(
            (0..len)
                .map(|i| seed.wrapping_add(i as u8))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn large_bodies_go_to_the_store_and_read_back_the_same() {
        let (dir, store) = store();
        let big = bytes(1, 100_000);
        let body = Body::keep(big.clone(), Some(&store));
        assert!(body.is_stored());
        assert_eq!(body.read().expect("read"), big);
        let mut out = Vec::new();
        body.write_to(&mut out).expect("write");
        assert_eq!(out, big);
        let small = Body::keep(bytes(2, 100), Some(&store));
        assert!(!small.is_stored(), "small bodies stay on the heap");
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("list").count(),
            0,
            "the store's file is unlinked"
        );
    }

    #[test]
    fn freed_regions_are_reused_and_the_file_shrinks_to_what_is_used() {
        let (_dir, store) = store();
        let a = store.put(&bytes(1, 20_000)).expect("a");
        let b = store.put(&bytes(2, 20_000)).expect("b");
        let c = store.put(&bytes(3, 20_000)).expect("c");
        let used = store.usage();
        assert_eq!(used.used_bytes, 3 * 20_480);
        let b_at = b.offset;
        drop(b);
        assert_eq!(store.usage(), used, "noted, not yet reclaimed");
        let d = store.put(&bytes(4, 8_000)).expect("d");
        assert_eq!(d.offset, b_at, "the hole is reused");
        let mut buf = vec![0; 20_000];
        a.read_at(&mut buf, 0).expect("a");
        assert_eq!(buf, bytes(1, 20_000), "neighbours are untouched");
        c.read_at(&mut buf, 0).expect("c");
        assert_eq!(buf, bytes(3, 20_000));
        drop((a, c, d));
        store.reclaim();
        assert_eq!(store.usage(), StoreUsage::default());
        assert_eq!(store.file.metadata().expect("meta").len(), 0);
    }

    #[test]
    fn free_space_merges_with_its_neighbours() {
        let mut space = Space::default();
        let a = space.take(PAGE);
        let b = space.take(PAGE);
        let c = space.take(PAGE);
        let _d = space.take(PAGE);
        space.give_back(a, PAGE);
        space.give_back(c, PAGE);
        space.give_back(b, PAGE);
        assert_eq!(space.free_at.len(), 1, "{:?}", space.free_at);
        assert_eq!(space.take(3 * PAGE), a, "one range of three pages");
    }

    #[test]
    fn reads_and_writes_outside_a_region_are_refused() {
        let (_dir, store) = store();
        let mut r = store.reserve(10).expect("reserve");
        assert!(r.write_at(b"0123456789a", 0).is_err());
        r.write_at(b"0123456789", 0).expect("fits");
        let mut buf = [0; 4];
        assert!(r.read_at(&mut buf, 8).is_err());
        r.read_at(&mut buf, 6).expect("inside");
        assert_eq!(&buf, b"6789");
    }
}
