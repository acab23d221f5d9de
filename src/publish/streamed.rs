//! The files of a streamed build (`feedsmith build`): each document's items
//! go into its temporary file in the output folder as soon as they are
//! rendered, and the head, which needs the newest update of all items, is
//! written last into the room left for it in front.
//!
//! Writing a 10 000-item feed's three documents whole after rendering them
//! put 135 MB through memory once more and then waited for all of it to
//! reach the disk; here the bytes leave the render buffers (which are
//! reused) chunk by chunk, and writeback of what is written starts while the
//! rest renders, so the final flush only waits for the tail. Each file is
//! still replaced atomically, as [`super::write_documents`] does: a
//! temporary file, flushed, renamed over the old one, then one sync of the
//! folder. This module only writes what it is given; it never decides what
//! a document holds.

use std::fs::File;
use std::io;
use std::num::NonZeroU64;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::fs::{Advice, fadvise};

use super::PublishError;
use super::output::{feed_file, sync_dir, temp_path, write_error};
use crate::builder::{FeedEnds, ItemSink};
use crate::config::{FeedName, Format};

/// How much a file takes in before the kernel is asked to start writing it
/// back: large enough to make few, long disk writes, small enough that the
/// final flush has little left to wait for.
const WRITEBACK_STEP: u64 = 8 << 20;

/// A streamed build's documents of one feed, being written. Hand it to
/// `FeedStream::push_to` as the items' sink, then [`finish`](Self::finish)
/// with the stream's ends. Dropped unfinished (an error, or rows out of feed
/// order), it removes its temporary files and leaves the old documents.
pub struct StreamedFiles {
    dir: PathBuf,
    files: Vec<Mutex<Pending>>,
}

/// One document's temporary file.
struct Pending {
    format: Format,
    path: PathBuf,
    tmp: PathBuf,
    file: File,
    /// Where the items start: the room left for the head.
    start: u64,
    /// Where the next items go.
    end: u64,
    /// Up to where writeback was asked for.
    kicked: u64,
}

impl StreamedFiles {
    /// Creates `dir` if needed and a temporary file for each of `formats`
    /// of `feed`, leaving `heads[i]` bytes in front of the items of the
    /// `i`-th (the length the head is expected to have).
    pub fn create(
        dir: &Path,
        feed: &FeedName,
        formats: &[Format],
        heads: &[usize],
    ) -> Result<Self, PublishError> {
        std::fs::create_dir_all(dir).map_err(write_error(dir))?;
        let mut this = Self {
            dir: dir.to_owned(),
            files: Vec::with_capacity(formats.len()),
        };
        for (&format, &head) in formats.iter().zip(heads) {
            let path = feed_file(dir, feed.as_str(), format);
            let tmp = temp_path(&path);
            // Readable too: a head that grew means reading the items back.
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(write_error(&tmp))?;
            // Pushed at once, so a failure below still removes this file.
            this.files.push(Mutex::new(Pending {
                format,
                path,
                tmp,
                file,
                start: head as u64,
                end: head as u64,
                kicked: head as u64,
            }));
        }
        Ok(this)
    }

    /// Puts each document's head in front of its items and its foot after
    /// them, flushes the files to disk (all at once), renames them over the
    /// old documents and syncs the folder. Returns the documents' paths in
    /// the order of the formats. `ends` must be in that order too.
    pub fn finish(mut self, ends: &[FeedEnds]) -> Result<Vec<PathBuf>, PublishError> {
        let files: Vec<Pending> = std::mem::take(&mut self.files)
            .into_iter()
            .map(|f| {
                f.into_inner()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
            })
            .collect();
        let results: Vec<Result<PathBuf, PublishError>> = std::thread::scope(|scope| {
            let jobs: Vec<_> = files
                .iter()
                .zip(ends)
                .map(|(file, ends)| scope.spawn(move || file.complete(ends)))
                .collect();
            jobs.into_iter()
                .map(|job| {
                    job.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let failed = results.iter().any(Result::is_err);
        if failed {
            for file in &files {
                let _ = std::fs::remove_file(&file.tmp);
            }
            return results.into_iter().collect();
        }
        let mut written = Vec::with_capacity(files.len());
        for file in &files {
            if let Err(e) = std::fs::rename(&file.tmp, &file.path) {
                for file in &files {
                    let _ = std::fs::remove_file(&file.tmp);
                }
                return Err(write_error(&file.path)(e));
            }
            written.push(file.path.clone());
        }
        sync_dir(&self.dir).map_err(write_error(&self.dir))?;
        Ok(written)
    }
}

impl Pending {
    /// Head and foot in place, then flushed to disk.
    fn complete(&self, ends: &FeedEnds) -> Result<PathBuf, PublishError> {
        debug_assert_eq!(self.format, ends.format);
        let failed = write_error(&self.tmp);
        let head = ends.head.len() as u64;
        let mut end = self.end;
        if head != self.start {
            // The newest update came after the first chunk and its time has
            // more or fewer digits: move the items to where the head ends.
            let len = usize::try_from(self.end - self.start)
                .map_err(|_| io::Error::other("document larger than memory"))
                .map_err(write_error(&self.tmp))?;
            let mut items = vec![0; len];
            self.file
                .read_exact_at(&mut items, self.start)
                .map_err(write_error(&self.tmp))?;
            self.file
                .write_all_at(&items, head)
                .map_err(write_error(&self.tmp))?;
            end = head + items.len() as u64;
        }
        self.file
            .write_all_at(&ends.foot, end)
            .and_then(|()| self.file.set_len(end + ends.foot.len() as u64))
            .and_then(|()| self.file.write_all_at(&ends.head, 0))
            .and_then(|()| self.file.sync_all())
            .map_err(failed)?;
        Ok(self.path.clone())
    }
}

impl ItemSink for StreamedFiles {
    fn items(&self, slot: usize, items: &[u8]) -> io::Result<()> {
        let Some(file) = self.files.get(slot) else {
            return Err(io::Error::other(format!("no document in slot {slot}")));
        };
        let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let at = file.end;
        file.file
            .write_all_at(items, at)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.tmp.display())))?;
        file.end = at + items.len() as u64;
        if file.end - file.kicked >= WRITEBACK_STEP {
            // POSIX_FADV_DONTNEED starts writeback of the dirty pages in the
            // range without waiting for it (Linux; what sync_file_range's
            // SYNC_FILE_RANGE_WRITE does, which no safe wrapper offers) and
            // drops none of them, since none is clean yet. Only a hint: its
            // failure loses nothing, the final flush writes everything.
            let _ = fadvise(
                &file.file,
                file.kicked,
                NonZeroU64::new(file.end - file.kicked),
                Advice::DontNeed,
            );
            file.kicked = file.end;
        }
        Ok(())
    }
}

impl Drop for StreamedFiles {
    fn drop(&mut self) {
        for file in &self.files {
            let file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let _ = std::fs::remove_file(&file.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn ends(format: Format, head: &str, foot: &str) -> FeedEnds {
        FeedEnds {
            format,
            head: head.as_bytes().to_vec(),
            foot: foot.as_bytes().to_vec(),
            last_modified: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn feed() -> FeedName {
        "latest".parse().expect("a valid feed name")
    }

    #[test]
    fn head_items_and_foot_end_up_in_order_whatever_room_was_left() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Room for a head of 6 bytes; the heads turn out 6, 9 and 2 long.
        let formats = [Format::Rss, Format::Atom, Format::Json];
        let files =
            StreamedFiles::create(dir.path(), &feed(), &formats, &[6, 6, 6]).expect("create");
        for slot in 0..3 {
            files.items(slot, b"<one/>").expect("items");
            files.items(slot, b"<two/>").expect("items");
        }
        let written = files
            .finish(&[
                ends(Format::Rss, "<head>", "</foot>"),
                ends(Format::Atom, "<longer!>", "</f>"),
                ends(Format::Json, "<>", ""),
            ])
            .expect("finish");
        let read = |i: usize| std::fs::read_to_string(&written[i]).expect("read");
        assert_eq!(read(0), "<head><one/><two/></foot>");
        assert_eq!(read(1), "<longer!><one/><two/></f>");
        assert_eq!(read(2), "<><one/><two/>");
        assert_eq!(written[0], dir.path().join("latest.rss"));
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "no temporary file left: {names:?}");
    }

    #[test]
    fn a_build_given_up_leaves_the_old_documents_and_no_temporary_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let old = dir.path().join("latest.atom");
        std::fs::write(&old, "old").expect("old document");
        let files =
            StreamedFiles::create(dir.path(), &feed(), &[Format::Atom], &[4]).expect("create");
        files.items(0, b"new items").expect("items");
        assert!(files.items(1, b"x").is_err(), "no second document");
        drop(files);
        assert_eq!(std::fs::read_to_string(&old).expect("read"), "old");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[test]
    fn writeback_hints_do_not_change_the_bytes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files =
            StreamedFiles::create(dir.path(), &feed(), &[Format::Rss], &[1]).expect("create");
        // Past WRITEBACK_STEP twice, in uneven pieces.
        let piece: Vec<u8> = (0..3_000_001u32).map(|i| (i % 251) as u8).collect();
        let mut expected = b"H".to_vec();
        for _ in 0..7 {
            files.items(0, &piece).expect("items");
            expected.extend_from_slice(&piece);
        }
        expected.extend_from_slice(b"F");
        let written = files
            .finish(&[ends(Format::Rss, "H", "F")])
            .expect("finish");
        assert!(std::fs::read(&written[0]).expect("read") == expected);
    }
}
