//! Finding `libonnxruntime.so`: `ORT_DYLIB_PATH`, then the project's `.venv` (where
//! `scripts/setup.sh` installs the wheel) beside the working directory or the executable, then
//! Python's site-packages.

use crate::error::RuntimeError;
use std::path::{Path, PathBuf};
use std::process::Command;

const VENV_CAPI: &str = ".venv/lib/python3.11/site-packages/onnxruntime/capi";

/// The library file in an `onnxruntime/capi` directory: the highest-versioned
/// `libonnxruntime.so.*` (the wheel ships no unversioned symlink).
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so") && !n.contains("providers"))
        })
        .collect();
    found.sort();
    found.pop()
}

fn python_site_packages() -> Vec<PathBuf> {
    let script =
        "import site,sys; print('\\n'.join(site.getsitepackages()+[site.getusersitepackages()]))";
    let Ok(out) = Command::new("python3").args(["-c", script]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect()
}

/// Where to look, in order (the explicit path first when given).
fn candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(p) = explicit {
        dirs.push(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        dirs.push(PathBuf::from(p));
    }
    if let Ok(cwd) = std::env::current_dir() {
        dirs.extend(cwd.ancestors().map(|a| a.join(VENV_CAPI)));
    }
    if let Ok(exe) = std::env::current_exe() {
        dirs.extend(exe.ancestors().skip(1).map(|a| a.join(VENV_CAPI)));
    }
    dirs
}

/// Locates the ONNX Runtime shared library, or says how to install it.
pub fn locate_library(explicit: Option<&Path>) -> Result<PathBuf, RuntimeError> {
    let mut searched = Vec::new();
    for c in candidates(explicit) {
        if c.is_file() {
            return Ok(c);
        }
        if let Some(lib) = library_in(&c) {
            return Ok(lib);
        }
        searched.push(c.display().to_string());
    }
    for sp in python_site_packages() {
        let capi = sp.join("onnxruntime/capi");
        if let Some(lib) = library_in(&capi) {
            return Ok(lib);
        }
        searched.push(capi.display().to_string());
    }
    searched.dedup();
    let shown: Vec<String> = searched.into_iter().take(6).collect();
    Err(RuntimeError::LibraryNotFound {
        searched: format!("ORT_DYLIB_PATH, {}, ...", shown.join(", ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_missing_path_is_reported_not_panicked() {
        let dir = std::env::temp_dir().join("osprey-no-such-ort-dir");
        // With the explicit path missing the search goes on; it must end in Ok or a clean error.
        match locate_library(Some(&dir)) {
            Ok(p) => assert!(p.exists()),
            Err(e) => assert!(e.to_string().contains("pip install onnxruntime")),
        }
    }

    #[test]
    fn picks_versioned_library_in_capi() {
        let dir = std::env::temp_dir().join(format!("osprey-capi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        std::fs::write(dir.join("libonnxruntime.so.1.31.1"), b"").expect("write");
        std::fs::write(dir.join("libonnxruntime_providers_shared.so"), b"").expect("write");
        assert_eq!(library_in(&dir), Some(dir.join("libonnxruntime.so.1.31.1")));
        std::fs::remove_dir_all(&dir).ok();
    }
}
