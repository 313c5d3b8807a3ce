//! What `--model-repository` points at: a Triton repository (one directory per model), or one
//! model's own directory, as KServe's `storageUri` names it.
//!
//! A directory is one model when it holds a `config.pbtxt`, a model file (`model.onnx`,
//! `model.safetensors`) or a numeric version directory at its root. It is then served as a
//! repository of that one model, named by `--model-name` (KServe passes the InferenceService's
//! name) or else after the directory. Its versions are its numeric directories as in Triton; a
//! directory with the model file at its root and no version directories (KServe's layout) is
//! version 1.

use super::files::{valid_model_name, ModelFiles};
use std::path::{Path, PathBuf};

/// Files whose presence at a directory's root makes it one model rather than a repository.
const MODEL_MARKERS: &[&str] = &["config.pbtxt", "model.onnx", "model.safetensors"];

/// The repository the server serves from.
#[derive(Debug, Clone)]
pub struct Repository {
    root: PathBuf,
    /// `Some(name)`: `root` is that one model's directory.
    single: Option<String>,
}

/// Whether `dir` is a model's own directory rather than a repository of models.
pub fn is_one_model(dir: &Path) -> bool {
    if MODEL_MARKERS.iter().any(|m| dir.join(m).is_file()) {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.path().is_dir()
            && e.file_name()
                .to_str()
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

impl Repository {
    /// A Triton repository at `root`.
    pub fn triton(root: PathBuf) -> Repository {
        Repository { root, single: None }
    }

    /// Reads `root`: one model (named `name`, else after the directory) or a repository.
    pub fn open(root: PathBuf, name: Option<&str>) -> Result<Repository, String> {
        if !is_one_model(&root) {
            return Ok(Repository::triton(root));
        }
        let name = match name {
            Some(n) => n.to_string(),
            None => root
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name()?.to_str().map(str::to_string))
                .unwrap_or_default(),
        };
        if !valid_model_name(&name) {
            return Err(format!(
                "--model-name: '{name}' is not a model name (one path component, not hidden)"
            ));
        }
        Ok(Repository {
            root,
            single: Some(name),
        })
    }

    /// The directory given on the command line.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The one model's name when the directory is one model.
    pub fn single(&self) -> Option<&str> {
        self.single.as_deref()
    }

    /// Model `name`'s directory, if the repository has it.
    pub fn model_dir(&self, name: &str) -> Option<PathBuf> {
        match &self.single {
            Some(one) => (one == name).then(|| self.root.clone()),
            None => {
                let dir = self.root.join(name);
                (valid_model_name(name) && dir.is_dir()).then_some(dir)
            }
        }
    }

    /// The models in the repository, sorted.
    pub fn models(&self) -> Vec<String> {
        if let Some(one) = &self.single {
            return vec![one.clone()];
        }
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    /// Model `name`'s files.
    pub fn files(&self, name: &str, follow_symlinks: bool) -> Result<ModelFiles, String> {
        match &self.single {
            Some(one) if one == name => ModelFiles::single(&self.root, name, follow_symlinks),
            Some(_) => Err(format!("'{name}' is not a model of this repository")),
            None => ModelFiles::new(&self.root, name, follow_symlinks),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, b"x").expect("write");
    }

    #[test]
    fn a_repository_is_directories_of_models() {
        let d = tempfile::tempdir().expect("tmp");
        touch(&d.path().join("mlp/1/model.onnx"));
        touch(&d.path().join("bert/config.pbtxt"));
        let r = Repository::open(d.path().to_path_buf(), Some("ignored")).expect("open");
        assert_eq!(r.single(), None);
        assert_eq!(r.models(), ["bert", "mlp"]);
        assert!(r.model_dir("mlp").is_some());
        assert!(r.model_dir("../mlp").is_none());
    }

    #[test]
    fn a_model_directory_is_one_model_named_by_the_flag_or_the_directory() {
        for marker in ["model.onnx", "config.pbtxt", "3/model.onnx"] {
            let d = tempfile::tempdir().expect("tmp");
            let dir = d.path().join("style");
            touch(&dir.join(marker));
            let r = Repository::open(dir.clone(), Some("style-sample")).expect("open");
            assert_eq!(r.single(), Some("style-sample"), "{marker}");
            assert_eq!(r.models(), ["style-sample"]);
            assert_eq!(r.model_dir("style-sample"), Some(dir.clone()));
            assert_eq!(r.model_dir("style"), None);
            let r = Repository::open(dir, None).expect("open");
            assert_eq!(r.single(), Some("style"), "{marker}");
        }
    }

    #[test]
    fn a_bad_model_name_is_refused_naming_the_flag() {
        let d = tempfile::tempdir().expect("tmp");
        touch(&d.path().join("model.onnx"));
        let e = Repository::open(d.path().to_path_buf(), Some("a/b")).unwrap_err();
        assert!(e.contains("--model-name"), "{e}");
    }
}
