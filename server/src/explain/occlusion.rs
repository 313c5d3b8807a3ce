//! Token occlusion for text: each token is removed in turn and the change of the explained value
//! is its attribution. With a tokenizer step the tokens are the model's own (word pieces,
//! removed through the attention mask); otherwise whitespace-separated words, removed from the
//! string.

use super::values::to_f64;
use super::{evaluate, Explanation, Settings};
use crate::error::ServerError;
use crate::model::LoadedModel;
use crate::stages::tokenize::{Field, Tokenize};
use bytes::Bytes;
use osprey_protocol::{Tensor, TensorData};

/// Explains every string of `input`.
pub async fn explain(
    model: &LoadedModel,
    input: &Tensor,
    s: &Settings,
) -> Result<(Vec<Explanation>, usize), ServerError> {
    let TensorData::Bytes(items) = &input.data else {
        return Err(ServerError::BadRequest(format!(
            "input '{}' is not text: use method \"kernel_shap\"",
            input.name
        )));
    };
    // Every row costs one evaluation per word (at least; word pieces are more, and are checked
    // once tokenized): refuse what cannot be afforded before any work.
    let planned = items.iter().fold(0usize, |acc, item| {
        let words = item
            .split(u8::is_ascii_whitespace)
            .filter(|w| !w.is_empty())
            .count();
        acc.saturating_add(words.saturating_add(1))
    });
    s.limits.rows(planned)?;
    let mut out = Vec::with_capacity(items.len());
    let mut evaluated = 0;
    for (row, item) in items.iter().enumerate() {
        let text = std::str::from_utf8(item).map_err(|_| {
            ServerError::BadRequest(format!("input '{}' is not valid UTF-8", input.name))
        })?;
        let (features, scores, how) = match model.stages.tokenizer() {
            Some(tok) => by_token(model, tok, text, s).await?,
            None => by_word(model, input, text, s).await?,
        };
        evaluated += scores.len();
        let reference = scores.first().cloned().unwrap_or_default();
        let target = s.target.resolve(&reference)?;
        let fx = target.score(&reference, &reference);
        let attributions = scores[1..]
            .iter()
            .map(|r| fx - target.score(r, &reference))
            .collect();
        out.push(Explanation {
            input: input.name.clone(),
            row,
            target: target.describe(),
            features,
            baseline: serde_json::json!(how),
            base_value: None,
            prediction: fx,
            attributions,
        });
    }
    Ok((out, evaluated))
}

fn rows_of(t: &Tensor, n: usize, output: &str) -> Result<Vec<Vec<f64>>, ServerError> {
    let v = to_f64(&t.data)
        .ok_or_else(|| ServerError::BadRequest(format!("output '{output}' is not numeric")))?;
    let per = (v.len() / n.max(1)).max(1);
    Ok(v.chunks(per).map(<[f64]>::to_vec).collect())
}

/// Word pieces, occluded through the attention mask; the predictor sees them directly.
async fn by_token(
    model: &LoadedModel,
    tok: &Tokenize,
    text: &str,
    s: &Settings,
) -> Result<(Vec<String>, Vec<Vec<f64>>, &'static str), ServerError> {
    let enc = tok.encode(&[text])?;
    let Some(e) = enc.first() else {
        return Ok((Vec::new(), Vec::new(), ""));
    };
    let positions: Vec<usize> = e
        .get_special_tokens_mask()
        .iter()
        .enumerate()
        .filter(|(_, &sp)| sp == 0)
        .map(|(i, _)| i)
        .collect();
    s.limits.features(&tok.input, positions.len(), "tokens")?;
    let base = tok.tensors(&enc);
    let len = e.len();
    let n = positions.len() + 1;
    let mut batch = Vec::with_capacity(base.len());
    for t in base {
        let TensorData::Int64(v) = &t.data else {
            return Err(ServerError::Internal("token tensors are INT64".into()));
        };
        let mut all = Vec::with_capacity(n * len);
        all.extend_from_slice(v);
        for &p in &positions {
            let mut variant = v.clone();
            if t.name == Field::Mask.input_name() {
                variant[p] = 0;
            }
            all.extend(variant);
        }
        batch.push(Tensor {
            name: t.name,
            shape: vec![n as i64, len as i64],
            data: TensorData::Int64(all),
        });
    }
    let y = evaluate(model, batch, n, &s.output, false).await?;
    let tokens = e.get_tokens();
    let features = positions
        .iter()
        .map(|&p| tokens.get(p).cloned().unwrap_or_default())
        .collect();
    Ok((
        features,
        rows_of(&y, n, &s.output)?,
        "token masked (attention_mask 0)",
    ))
}

/// Whitespace-separated words, removed from the string; the whole model runs.
async fn by_word(
    model: &LoadedModel,
    input: &Tensor,
    text: &str,
    s: &Settings,
) -> Result<(Vec<String>, Vec<Vec<f64>>, &'static str), ServerError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    s.limits.features(&input.name, words.len(), "words")?;
    let n = words.len() + 1;
    let mut strings = Vec::with_capacity(n);
    strings.push(Bytes::from(text.to_string()));
    for i in 0..words.len() {
        let rest: Vec<&str> = words
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, w)| *w)
            .collect();
        strings.push(Bytes::from(rest.join(" ")));
    }
    let mut shape = vec![n as i64];
    shape.extend(input.shape.iter().skip(1));
    let t = Tensor::new(&input.name, shape, TensorData::Bytes(strings))?;
    let y = evaluate(model, vec![t], n, &s.output, true).await?;
    Ok((
        words.iter().map(|w| w.to_string()).collect(),
        rows_of(&y, n, &s.output)?,
        "word removed",
    ))
}
