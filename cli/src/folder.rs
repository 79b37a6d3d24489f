//! Folders as documents: `doc import DOC DIR` writes every file under DIR as an entry whose
//! key is the file's path relative to DIR with `/` separators; `doc export DOC DIR` writes
//! the newest entry of each key back as a file.
//!
//! A document may be written by anyone holding its write capability, so its keys are not
//! trusted input: an export refuses the whole document, before writing anything, when any
//! key is not a plain relative path (not UTF-8, absolute, an empty, `.` or `..` component,
//! a NUL byte), and it never writes through a symbolic link it finds below DIR. Each file
//! is written to a temporary file in its destination folder and renamed into place, so an
//! interrupted export leaves either the old file or the new one, never half of one.
//!
//! Both run in the process that holds the store (like `--file` and `--out`), so DIR is
//! passed as an absolute path.

use std::{
    fs::OpenOptions,
    path::{Component, Path, PathBuf},
};

use sheaf_tokio::{AuthorId, Doc, FileProgress, Query, SignedEntry};
use tokio::sync::mpsc;

use crate::{
    commands::{progress, Update},
    keys::quoted,
    node::Node,
    output::Output,
    CliError, Result,
};

/// A file found under the folder being imported.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    key: String,
    path: PathBuf,
    len: u64,
}

/// The regular, non-empty files under `root`, keyed by their relative paths, in key order;
/// and how many were skipped (empty files, symbolic links and other special files).
fn walk(root: &Path) -> Result<(Vec<Found>, usize)> {
    let meta = std::fs::metadata(root)
        .map_err(|e| CliError::Other(format!("cannot read {}: {e}", root.display())))?;
    if !meta.is_dir() {
        return Err(CliError::Other(format!(
            "{} is not a folder",
            root.display()
        )));
    }
    let mut found = Vec::new();
    let mut skipped = 0;
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let read_err =
            |e: std::io::Error| CliError::Other(format!("cannot read {}: {e}", dir.display()));
        for item in std::fs::read_dir(&dir).map_err(read_err)? {
            let item = item.map_err(read_err)?;
            let path = item.path();
            // `file_type` does not follow symbolic links: a link to a folder above would loop.
            let kind = item.file_type().map_err(read_err)?;
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            let len = if kind.is_file() {
                item.metadata().map_err(read_err)?.len()
            } else {
                0
            };
            if len == 0 {
                // An entry cannot be empty (an empty entry is a deletion).
                skipped += 1;
                continue;
            }
            found.push(Found {
                key: key_of(root, &path)?,
                path,
                len,
            });
        }
    }
    found.sort_by(|a, b| a.key.cmp(&b.key));
    Ok((found, skipped))
}

/// The key of the file at `path` below `root`: its relative path, `/`-separated.
fn key_of(root: &Path, path: &Path) -> Result<String> {
    let rel = path.strip_prefix(root).map_err(CliError::other)?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => parts.push(name.to_str().ok_or_else(|| {
                CliError::Other(format!("file name is not valid UTF-8: {}", path.display()))
            })?),
            _ => {
                return Err(CliError::Other(format!(
                    "unexpected path {}",
                    path.display()
                )))
            }
        }
    }
    Ok(parts.join("/"))
}

/// Runs `doc import`: every regular, non-empty file under `dir` becomes an entry by `author`.
pub async fn import(
    doc: &Doc,
    author: AuthorId,
    dir: &Path,
    updates: &mpsc::Sender<Update>,
) -> Result<Output> {
    let (files, skipped) = walk(dir)?;
    let total: u64 = files.iter().map(|f| f.len).sum();
    let mut done = 0u64;
    for f in &files {
        let base = done;
        let report = |p: FileProgress| {
            if let FileProgress::Copied(n) | FileProgress::Hashed(n) = p {
                progress(updates, "import", base + n.min(f.len), Some(total));
            }
        };
        doc.import_file(author, f.key.clone(), &f.path, report)
            .await
            .map_err(|e| CliError::Other(format!("importing {}: {e}", f.path.display())))?;
        done += f.len;
        progress(updates, "import", done, Some(total));
    }
    Ok(Output::Imported {
        files: files.len(),
        bytes: done,
        skipped,
        dir: dir.display().to_string(),
    })
}

/// The path components of `key` when it is a plain relative path, else why not.
pub fn safe_components(key: &[u8]) -> std::result::Result<Vec<&str>, &'static str> {
    let key = std::str::from_utf8(key).map_err(|_| "it is not valid UTF-8")?;
    if key.contains('\0') {
        return Err("it contains a NUL byte");
    }
    if key.starts_with('/') {
        return Err("it is an absolute path");
    }
    let parts: Vec<&str> = key.split('/').collect();
    for part in &parts {
        match *part {
            "" => return Err("it has an empty path component"),
            "." | ".." => return Err("it has a `.` or `..` path component"),
            _ => {}
        }
        // Whatever else the platform treats specially (`\` and drive prefixes on Windows):
        // a component must be exactly one plain file name.
        let mut cs = Path::new(part).components();
        if !matches!((cs.next(), cs.next()), (Some(Component::Normal(_)), None))
            || (cfg!(windows) && part.contains([':', '\\']))
        {
            return Err("it is not a plain relative path here");
        }
    }
    Ok(parts)
}

/// Runs `doc export`: the newest non-empty entry of each key becomes a file under `dir`.
pub async fn export(
    node: &Node,
    doc: &Doc,
    dir: &Path,
    updates: &mpsc::Sender<Update>,
) -> Result<Output> {
    let entries = doc.get_many(Query::single_latest_per_key()).await?;
    // Check everything first: a refused export writes nothing at all.
    let mut plan: Vec<(PathBuf, &SignedEntry)> = Vec::with_capacity(entries.len());
    for e in &entries {
        let parts = safe_components(e.key()).map_err(|why| {
            CliError::Other(format!(
                "refusing to export key {} to {}: {why}",
                quoted(e.key()),
                dir.display()
            ))
        })?;
        if !node.has_content(e.content_hash()).await {
            return Err(CliError::NoContent(quoted(e.key())));
        }
        plan.push((parts.iter().collect(), e));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::Other(format!("cannot create {}: {e}", dir.display())))?;
    let total: u64 = plan.iter().map(|(_, e)| e.content_len()).sum();
    let mut done = 0u64;
    for (rel, entry) in &plan {
        let target = dir.join(rel);
        let parent = make_parents(dir, rel, entry)?;
        let tmp = TempFile::create(&parent, &target)?;
        let base = done;
        let len = entry.content_len();
        let report = |p: FileProgress| {
            if let FileProgress::Copied(n) = p {
                progress(updates, "export", base + n.min(len), Some(total));
            }
        };
        let write_err = |e: &dyn std::fmt::Display| {
            CliError::Other(format!(
                "cannot write {} (key {}): {e}",
                target.display(),
                quoted(entry.key())
            ))
        };
        doc.export_file(entry, &tmp.path, report)
            .await
            .map_err(|e| write_err(&e))?;
        tmp.persist(&target).map_err(|e| write_err(&e))?;
        done += len;
        progress(updates, "export", done, Some(total));
    }
    Ok(Output::Exported {
        files: plan.len(),
        bytes: done,
        dir: dir.display().to_string(),
    })
}

/// Creates the folders of `rel` below `root` (all but its last component) and returns the
/// innermost; refuses to go through a symbolic link or a file in the way.
fn make_parents(root: &Path, rel: &Path, entry: &SignedEntry) -> Result<PathBuf> {
    let mut at = root.to_path_buf();
    let mut parts: Vec<Component> = rel.components().collect();
    parts.pop();
    for part in parts {
        at.push(part);
        let refuse = |why: &str| {
            CliError::Other(format!(
                "refusing to export key {}: {} {why}",
                quoted(entry.key()),
                at.display()
            ))
        };
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refuse("is a symbolic link"));
            }
            Ok(_) => return Err(refuse("exists and is not a folder")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&at).map_err(|e| refuse(&format!("cannot be created: {e}")))?
            }
            Err(e) => return Err(refuse(&format!("cannot be read: {e}"))),
        }
    }
    Ok(at)
}

/// A temporary file beside a target, removed unless [`TempFile::persist`]ed. Created with
/// the process's default permissions, so the renamed file has the ones a new file would.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    fn create(parent: &Path, target: &Path) -> Result<TempFile> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for attempt in 0u32..100 {
            let path = parent.join(format!(
                ".{name}.sheaf-tmp-{}-{attempt}",
                std::process::id()
            ));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => return Ok(TempFile { path, keep: false }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(CliError::Other(format!(
                        "cannot create a file in {}: {e}",
                        parent.display()
                    )))
                }
            }
        }
        Err(CliError::Other(format!(
            "cannot create a temporary file in {}",
            parent.display()
        )))
    }

    /// Makes the content durable and renames the file to `target`.
    fn persist(mut self, target: &Path) -> std::io::Result<()> {
        OpenOptions::new()
            .write(true)
            .open(&self.path)?
            .sync_all()?;
        std::fs::rename(&self.path, target)?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_keys() {
        assert_eq!(safe_components(b"a").unwrap(), ["a"]);
        assert_eq!(
            safe_components(b"a/b c/d.txt").unwrap(),
            ["a", "b c", "d.txt"]
        );
        assert_eq!(safe_components(b"..a/b..").unwrap(), ["..a", "b.."]);
        for bad in [
            &b""[..],
            b"/abs",
            b"../evil",
            b"a/../../evil",
            b"a/./b",
            b".",
            b"a//b",
            b"a/",
            b"a\0b",
            &[0xff, b'a'],
        ] {
            assert!(safe_components(bad).is_err(), "{:?}", bad);
        }
    }

    #[test]
    fn walk_finds_nested_files_and_skips_links_and_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("top"), b"1").unwrap();
        std::fs::write(root.join("a/b/deep"), b"22").unwrap();
        std::fs::write(root.join("a/empty"), b"").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root, root.join("a/loop")).unwrap();
        let (found, skipped) = walk(root).unwrap();
        let keys: Vec<&str> = found.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["a/b/deep", "top"]);
        assert_eq!(found[0].len, 2);
        assert_eq!(skipped, if cfg!(unix) { 2 } else { 1 });
        assert!(walk(&root.join("top")).is_err());
        assert!(walk(&root.join("missing")).is_err());
    }
}
