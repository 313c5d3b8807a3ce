//! Reading `spec.algorithm.algorithmSettings` (`[{name, value}]`, values as strings), with
//! errors naming the setting's field (`spec.algorithm.algorithmSettings[1].value`).

use super::experiment::Setting;
use super::space::SpaceError;

/// The field of setting `i`'s value.
pub fn value_field(i: usize) -> String {
    format!("spec.algorithm.algorithmSettings[{i}].value")
}

/// An error on setting `i`'s value.
pub fn bad_value(i: usize, message: impl Into<String>) -> SpaceError {
    SpaceError {
        field: value_field(i),
        message: message.into(),
    }
}

/// The error for a setting `algorithm` does not know (`known` lists the ones it does).
pub fn unknown(i: usize, st: &Setting, algorithm: &str, known: &str) -> SpaceError {
    SpaceError {
        field: format!("spec.algorithm.algorithmSettings[{i}].name"),
        message: format!("unknown setting {:?} for {algorithm} ({known})", st.name),
    }
}

/// Setting `i` as a non-negative integer.
pub fn int(i: usize, st: &Setting) -> Result<u64, SpaceError> {
    st.value.trim().parse::<u64>().map_err(|_| {
        bad_value(
            i,
            format!(
                "{} must be a non-negative integer, got {:?}",
                st.name, st.value
            ),
        )
    })
}

/// Setting `i` as a count (an integer, at least `least`).
pub fn count(i: usize, st: &Setting, least: u64) -> Result<usize, SpaceError> {
    let n = int(i, st)?;
    if n < least {
        return Err(bad_value(
            i,
            format!("{} must be at least {least}, got {n}", st.name),
        ));
    }
    usize::try_from(n).map_err(|_| bad_value(i, format!("{} is too large", st.name)))
}

/// Setting `i` as a finite number for which `ok` holds (`what` says which are allowed).
pub fn number(
    i: usize,
    st: &Setting,
    ok: impl Fn(f64) -> bool,
    what: &str,
) -> Result<f64, SpaceError> {
    st.value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && ok(*x))
        .ok_or_else(|| bad_value(i, format!("{} must be {what}, got {:?}", st.name, st.value)))
}

/// Setting `i` as one of `choices`.
pub fn choice<'c>(i: usize, st: &Setting, choices: &[&'c str]) -> Result<&'c str, SpaceError> {
    let v = st.value.trim();
    choices.iter().find(|c| **c == v).copied().ok_or_else(|| {
        bad_value(
            i,
            format!(
                "{} must be one of {}, got {:?}",
                st.name,
                choices.join(", "),
                st.value
            ),
        )
    })
}
