//! The files a model's configuration names, resolved inside the model's own directory.
//!
//! A configuration names files (`default_model_filename`, `label_filename`,
//! `tokenize.tokenizer_file`, `labels.label_filename`); each must be a relative path without
//! `..`, and what it resolves to — symlinks followed — must lie inside the model's directory.
//! Symlinks anywhere in a version directory are checked the same way before a runtime opens it.
//! `--model-symlinks` (repository-wide) lets symlinks point anywhere, for operators who link
//! model files from elsewhere; named paths must still be relative and free of `..`.
//! Messages name files relative to the repository, never by the server's absolute paths.

use std::path::{Component, Path, PathBuf};

/// Most directory entries looked at when a version directory's symlinks are checked.
const MAX_ENTRIES: usize = 10_000;
/// Deepest directory level looked at below a version directory.
const MAX_DEPTH: usize = 8;

/// One model's directory in the repository.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The model's name: its directory in the repository.
    name: String,
    /// `repository/name`.
    dir: PathBuf,
    /// The directory with every symlink resolved: files must resolve below it.
    canonical: PathBuf,
    /// Whether symlinks may point outside the model's directory (`--model-symlinks`).
    follow_symlinks: bool,
    /// The directory was given as one model (KServe's layout; see `layout`): messages name
    /// files relative to it, and its root may hold version 1's files.
    single: bool,
    /// Version 1's files lie at the directory's root, not in `1/`.
    flat: bool,
}

/// Whether `name` is a plain model name: one path component, not hidden, not `.` or `..`.
pub fn valid_model_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(
        (parts.next(), parts.next()),
        (Some(Component::Normal(_)), None)
    ) && !name.starts_with('.')
        && !name.contains(['/', '\\'])
}

impl ModelFiles {
    /// The directory of model `name` in `repository`.
    pub fn new(repository: &Path, name: &str, follow_symlinks: bool) -> Result<ModelFiles, String> {
        if !valid_model_name(name) {
            return Err(format!("'{name}' is not a model name"));
        }
        let dir = repository.join(name);
        let canonical = dir
            .canonicalize()
            .map_err(|e| format!("model directory '{name}': {}", e.kind()))?;
        Ok(ModelFiles {
            name: name.to_string(),
            dir,
            canonical,
            follow_symlinks,
            single: false,
            flat: false,
        })
    }

    /// `dir`, a model's own directory given as the whole repository, served as model `name`.
    pub fn single(dir: &Path, name: &str, follow_symlinks: bool) -> Result<ModelFiles, String> {
        let canonical = dir
            .canonicalize()
            .map_err(|e| format!("model directory: {}", e.kind()))?;
        Ok(ModelFiles {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            canonical,
            follow_symlinks,
            single: true,
            flat: false,
        })
    }

    /// Whether the directory was given as one model (see [`ModelFiles::single`]).
    pub fn is_single(&self) -> bool {
        self.single
    }

    /// Takes version 1's files from the directory's root (a one-model directory without
    /// version directories).
    pub fn set_flat(&mut self) {
        self.flat = true;
    }

    /// The directory of `version`, relative to the model's directory (`""`: its root).
    pub fn version_dir(&self, version: u64) -> String {
        if self.flat {
            String::new()
        } else {
            version.to_string()
        }
    }

    /// The model's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `sub` (relative to the model's directory) as messages show it: relative to the
    /// repository.
    pub fn shown(&self, sub: &Path) -> String {
        if sub.as_os_str().is_empty() {
            return self.name.clone();
        }
        if self.single {
            return sub.display().to_string();
        }
        Path::new(&self.name).join(sub).display().to_string()
    }

    /// Finds file `file`, named by configuration field `field`, in the first of `subdirs`
    /// (relative to the model's directory; `""` is the directory itself) that holds it.
    pub fn find(&self, field: &str, file: &str, subdirs: &[&str]) -> Result<PathBuf, String> {
        check_relative(field, file)?;
        for sub in subdirs {
            let rel = Path::new(sub).join(file);
            let path = self.dir.join(&rel);
            if path.is_file() {
                self.check_inside(field, &rel, &path)?;
                return Ok(path);
            }
        }
        Err(format!(
            "{field} '{file}' not found in {}",
            subdirs
                .iter()
                .map(|s| self.shown(Path::new(s)))
                .collect::<Vec<_>>()
                .join(" or ")
        ))
    }

    /// Checks that every symlink in `sub` (a version directory, relative to the model's
    /// directory) resolves inside the model's directory.
    pub fn check_tree(&self, sub: &str) -> Result<(), String> {
        if self.follow_symlinks {
            return Ok(());
        }
        let mut stack = vec![(PathBuf::from(sub), 0usize)];
        let mut seen = 0usize;
        while let Some((rel, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(self.dir.join(&rel)) else {
                continue;
            };
            for entry in entries.flatten() {
                seen += 1;
                if seen > MAX_ENTRIES {
                    return Err(format!(
                        "{} holds more than {MAX_ENTRIES} files",
                        self.shown(Path::new(sub))
                    ));
                }
                let child = rel.join(entry.file_name());
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_symlink() {
                    self.check_inside("file", &child, &entry.path())?;
                } else if kind.is_dir() && depth < MAX_DEPTH {
                    stack.push((child, depth + 1));
                }
            }
        }
        Ok(())
    }

    fn check_inside(&self, field: &str, rel: &Path, path: &Path) -> Result<(), String> {
        if self.follow_symlinks {
            return Ok(());
        }
        let real = path
            .canonicalize()
            .map_err(|e| format!("{field} {}: {}", self.shown(rel), e.kind()))?;
        if real.starts_with(&self.canonical) {
            Ok(())
        } else {
            Err(format!(
                "{field} {} is a symlink that leads outside the model's directory \
                 (start the server with --model-symlinks to allow that)",
                self.shown(rel)
            ))
        }
    }
}

/// Refuses absolute paths and `..`: a configuration names files inside the model only.
pub fn check_relative(field: &str, file: &str) -> Result<(), String> {
    let ok = !file.is_empty()
        && Path::new(file)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field} '{file}' must be a relative path inside the model's directory \
             (no absolute path, no '..')"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(d.path().join("m/1/sub")).expect("dirs");
        std::fs::write(d.path().join("m/labels.txt"), "a\nb\n").expect("write");
        std::fs::write(d.path().join("m/1/tok.json"), "{}").expect("write");
        std::fs::write(d.path().join("secret"), "x").expect("write");
        d
    }

    #[test]
    fn model_names_are_one_plain_component() {
        for ok in ["mlp", "text_sentiment", "a.b"] {
            assert!(valid_model_name(ok), "{ok}");
        }
        for bad in [".", "..", "", "a/b", "/etc", ".hidden", "a\\b"] {
            assert!(!valid_model_name(bad), "{bad}");
        }
    }

    #[test]
    fn finds_files_inside_and_names_them_relative_to_the_repository() {
        let d = repo();
        let f = ModelFiles::new(d.path(), "m", false).expect("model");
        assert_eq!(
            f.find("label_filename", "labels.txt", &[""])
                .expect("found"),
            d.path().join("m/labels.txt")
        );
        assert_eq!(
            f.find("tokenizer_file", "tok.json", &["1", ""])
                .expect("found"),
            d.path().join("m/1/tok.json")
        );
        let e = f
            .find("tokenizer_file", "nope.json", &["1", ""])
            .unwrap_err();
        assert_eq!(e, "tokenizer_file 'nope.json' not found in m/1 or m");
        assert!(!e.contains(&d.path().display().to_string()));
    }

    #[test]
    fn refuses_absolute_paths_and_dot_dot() {
        let d = repo();
        let f = ModelFiles::new(d.path(), "m", true).expect("model");
        for bad in ["/etc/passwd", "../secret", "1/../../secret", ""] {
            let e = f.find("label_filename", bad, &[""]).unwrap_err();
            assert!(e.contains("relative path inside"), "{bad}: {e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_the_model_are_refused_unless_allowed() {
        let d = repo();
        std::os::unix::fs::symlink(d.path().join("secret"), d.path().join("m/out.txt"))
            .expect("link");
        std::os::unix::fs::symlink(d.path().join("secret"), d.path().join("m/1/sub/x"))
            .expect("link");
        std::os::unix::fs::symlink("../labels.txt", d.path().join("m/1/in.txt")).expect("link");
        let strict = ModelFiles::new(d.path(), "m", false).expect("model");
        let e = strict.find("label_filename", "out.txt", &[""]).unwrap_err();
        assert!(
            e.contains("m/out.txt") && e.contains("--model-symlinks"),
            "{e}"
        );
        assert!(strict.find("label_filename", "in.txt", &["1"]).is_ok());
        let e = strict.check_tree("1").unwrap_err();
        assert!(e.contains("m/1/sub/x"), "{e}");
        let lax = ModelFiles::new(d.path(), "m", true).expect("model");
        assert!(lax.find("label_filename", "out.txt", &[""]).is_ok());
        assert!(lax.check_tree("1").is_ok());
    }
}
