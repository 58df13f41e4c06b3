//! Crash-safe file writing: temp file, fsync, rename, fsync directory; and the writer lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Replaces `path` with `bytes` atomically: readers see the old file or the new one,
/// never a mix, and after return the new content survives a power cut.
///
/// # Errors
/// Any I/O error; the original file is then untouched.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut nonce = [0u8; 6];
    getrandom::fill(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        crate::b64::encode(nonce)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The mode is the file's contract (a public ring is 0644 whatever the umask).
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` with `bytes`, failing if it exists; durable on return.
///
/// # Errors
/// `AlreadyExists` if the file exists, or any I/O error.
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Flushes a directory's entries (renames, creations, deletions) to disk.
///
/// # Errors
/// Any I/O error.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// An exclusive advisory lock on a file, held until dropped. Serialises every writer of
/// a keys directory across threads and processes.
#[derive(Debug)]
pub struct Lock {
    file: File,
}

impl Lock {
    /// Blocks until the lock on `path` (created 0600 if missing) is held.
    ///
    /// # Errors
    /// Any I/O error opening or locking the file.
    pub fn acquire(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        file.lock()?;
        Ok(Self { file })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// The largest file read as a key ring or other document: far above any real ring.
pub const MAX_DOCUMENT_BYTES: u64 = 16 << 20;

/// The largest ledger read (`tokens.jsonl`, about 200 bytes a minted token): a million
/// tokens fit many times over.
pub const MAX_LEDGER_BYTES: u64 = 1 << 30;

/// The length of the longest prefix of `file` (of `len` bytes) that ends with a newline,
/// read backwards from the end: `len` itself when the file ends with one, 0 when it holds
/// none. Only the bytes after the last newline (and the block holding it) are read.
///
/// # Errors
/// Any I/O error.
pub fn whole_lines_len(file: &File, len: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt as _;
    let mut block = [0u8; 4096];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let chunk = &mut block[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Reads a regular file of at most `max` bytes, following symlinks. Opening never
/// blocks (a FIFO swapped in place of the file is refused rather than waited on) and a
/// larger file is refused rather than read into memory.
///
/// # Errors
/// `InvalidData` for a file that is not regular or is larger than `max`; any I/O error.
pub fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    // O_NONBLOCK only matters for the open itself: a FIFO opens at once instead of
    // waiting for a writer, and is then refused below. Regular files ignore it.
    const O_NONBLOCK: i32 = 0o4000;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    if meta.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_regular_refuses_fifos_dirs_and_big_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"hello").unwrap();
        assert_eq!(read_regular(&file, 5).unwrap(), b"hello");
        assert!(read_regular(&file, 4).is_err());
        assert!(read_regular(dir.path(), 100).is_err());
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let err = read_regular(&fifo, 100).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        }
    }

    #[test]
    fn whole_lines_len_finds_the_last_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let cases: Vec<(Vec<u8>, u64)> = vec![
            (b"".to_vec(), 0),
            (b"torn".to_vec(), 0),
            (b"\n".to_vec(), 1),
            (b"a\nb\n".to_vec(), 4),
            (b"a\nb\ntorn".to_vec(), 4),
            // A newline and a torn tail on either side of a 4096-byte block edge.
            (
                [vec![b'x'; 5000], b"\n".to_vec(), vec![b'y'; 5000]].concat(),
                5001,
            ),
            (
                [vec![b'x'; 4095], b"\n".to_vec(), vec![b'y'; 4096]].concat(),
                4096,
            ),
            ([b"\n".to_vec(), vec![b'y'; 3 * 4096]].concat(), 1),
            (vec![b'y'; 3 * 4096 + 7], 0),
        ];
        for (bytes, want) in cases {
            std::fs::write(&path, &bytes).unwrap();
            let f = File::open(&path).unwrap();
            assert_eq!(
                whole_lines_len(&f, bytes.len() as u64).unwrap(),
                want,
                "{} bytes",
                bytes.len()
            );
        }
    }
}
