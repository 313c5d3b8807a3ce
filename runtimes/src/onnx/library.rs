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

/// The library at an explicitly named path: the file itself or an `onnxruntime/capi` directory.
fn explicit_library(path: &Path, origin: &str) -> Result<PathBuf, RuntimeError> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    library_in(path).ok_or_else(|| RuntimeError::LibraryNotFound {
        searched: format!("{origin} {}", path.display()),
    })
}

/// Locates the ONNX Runtime shared library, or says how to install it. An explicit path (the
/// argument, then `ORT_DYLIB_PATH`) must be right; otherwise the project's `.venv` beside the
/// working directory or the executable, then Python's site-packages, are searched.
pub fn locate_library(explicit: Option<&Path>) -> Result<PathBuf, RuntimeError> {
    if let Some(p) = explicit {
        return explicit_library(p, "--onnxruntime-library");
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return explicit_library(Path::new(&p), "ORT_DYLIB_PATH");
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        dirs.extend(cwd.ancestors().map(|a| a.join(VENV_CAPI)));
    }
    if let Ok(exe) = std::env::current_exe() {
        dirs.extend(exe.ancestors().skip(1).map(|a| a.join(VENV_CAPI)));
    }
    dirs.extend(
        python_site_packages()
            .into_iter()
            .map(|sp| sp.join("onnxruntime/capi")),
    );
    for d in &dirs {
        if let Some(lib) = library_in(d) {
            return Ok(lib);
        }
    }
    Err(RuntimeError::LibraryNotFound {
        searched: format!("ORT_DYLIB_PATH (unset), {VENV_CAPI} above the working directory and the binary, Python's site-packages"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_missing_path_is_a_clean_error() {
        let missing = std::env::temp_dir().join("osprey-no-such-ort/libonnxruntime.so");
        let e = locate_library(Some(&missing)).unwrap_err();
        assert!(e.to_string().contains("pip install onnxruntime"), "{e}");
        assert!(e.to_string().contains("osprey-no-such-ort"), "{e}");
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
