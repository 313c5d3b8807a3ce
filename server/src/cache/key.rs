//! What identifies a cached answer: a SHA-256 digest over the model's name and version (and
//! which load of it: a reloaded model never finds its previous answers), every
//! input (name, datatype, shape, data in the binary wire form; in name order, so the order
//! the client listed them in does not matter), the requested outputs in the order asked with
//! their `classification` count, and the request parameters that reach a remote predictor.
//!
//! Only the 32-byte digest is stored, not the request: two different requests share an entry
//! only if SHA-256 collides, which is cryptographically out of reach (an attacker cannot forge
//! one). Every field is length-prefixed, so no two different requests hash the same bytes.
//!
//! Left out because they do not change the output tensors: `binary_data` /
//! `binary_data_output` (only how a REST answer is encoded, decided per request from the
//! request's own choices), `priority` and `timeout` (where and how long it queues), and the
//! request `id` (each answer carries its own request's id).

use crate::infer::Prepared;
use osprey_protocol::{ParamValue, Tensor};
use ring::digest::{Context, SHA256};

/// A cache key: the SHA-256 digest of everything that decides the answer.
pub type Key = [u8; 32];

/// Request parameters of a sequence (stateful) request: such a request's answer depends on
/// what came before it, so it is never cached (as in Triton).
const SEQUENCE: &[&str] = &["sequence_id", "sequence_start", "sequence_end"];

/// Request parameters that do not change the output tensors.
const NOT_IN_KEY: &[&str] = &["priority", "timeout", "binary_data_output"];

struct Hasher(Context);

impl Hasher {
    fn bytes(&mut self, b: &[u8]) {
        self.0.update(&(b.len() as u64).to_le_bytes());
        self.0.update(b);
    }

    fn u64(&mut self, n: u64) {
        self.0.update(&n.to_le_bytes());
    }

    fn tensor(&mut self, t: &Tensor, scratch: &mut Vec<u8>) {
        self.bytes(t.name.as_bytes());
        self.bytes(t.datatype().as_str().as_bytes());
        self.u64(t.shape.len() as u64);
        for d in &t.shape {
            self.0.update(&d.to_le_bytes());
        }
        scratch.clear();
        t.data.write_wire(scratch);
        self.bytes(scratch);
    }

    fn param(&mut self, v: &ParamValue) {
        match v {
            ParamValue::Bool(b) => self.bytes(&[0, u8::from(*b)]),
            ParamValue::Int(n) => self.bytes(&[&[1u8][..], &n.to_le_bytes()].concat()),
            ParamValue::Uint(n) => self.bytes(&[&[2u8][..], &n.to_le_bytes()].concat()),
            ParamValue::Double(x) => self.bytes(&[&[3u8][..], &x.to_bits().to_le_bytes()].concat()),
            ParamValue::String(s) => self.bytes(&[&[4u8][..], s.as_bytes()].concat()),
        }
    }
}

/// The key of `req` to version `version` of model `model` as loaded the `load`th time, or None
/// when the request must not be cached (it carries sequence parameters).
pub fn request_key(model: &str, version: u64, load: u64, req: &Prepared) -> Option<Key> {
    if SEQUENCE.iter().any(|p| req.params.contains_key(*p)) {
        return None;
    }
    let mut h = Hasher(Context::new(&SHA256));
    h.bytes(b"osprey response cache 1");
    h.bytes(model.as_bytes());
    h.u64(version);
    h.u64(load);
    let mut inputs: Vec<&Tensor> = req.inputs.iter().collect();
    inputs.sort_by(|a, b| a.name.cmp(&b.name));
    h.u64(inputs.len() as u64);
    let mut scratch = Vec::new();
    for t in inputs {
        h.tensor(t, &mut scratch);
    }
    h.u64(req.outputs.wanted.len() as u64);
    for w in &req.outputs.wanted {
        h.bytes(w.name.as_bytes());
        // 0: the tensor itself; n + 1: the top n classes.
        h.u64(w.classes.map_or(0, |n| (n as u64).saturating_add(1)));
    }
    // A BTreeMap: always in key order.
    for (k, v) in req
        .params
        .iter()
        .filter(|(k, _)| !NOT_IN_KEY.contains(&k.as_str()))
    {
        h.bytes(k.as_bytes());
        h.param(v);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(h.0.finish().as_ref());
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::{Outputs, Wanted};
    use crate::scheduler::Placement;
    use osprey_protocol::{Parameters, TensorData};

    fn request(values: &[f32]) -> Prepared {
        Prepared {
            id: None,
            inputs: vec![Tensor::new(
                "x",
                vec![1, values.len() as i64],
                TensorData::Fp32(values.to_vec()),
            )
            .expect("tensor")],
            rows: 1,
            outputs: Outputs {
                wanted: vec![],
                binary_default: false,
            },
            placement: Placement::default(),
            params: Parameters::new(),
        }
    }

    fn key(req: &Prepared) -> Key {
        request_key("m", 1, 0, req).expect("cacheable")
    }

    #[test]
    fn the_same_request_has_the_same_key() {
        let mut a = request(&[1.0, 2.0]);
        assert_eq!(key(&a), key(&request(&[1.0, 2.0])));
        // The id, binary encoding and queueing choices do not change the answer.
        a.id = Some("req-1".into());
        a.outputs.binary_default = true;
        a.params.insert("priority".into(), ParamValue::Int(1));
        a.params.insert("timeout".into(), ParamValue::Int(100));
        a.params
            .insert("binary_data_output".into(), ParamValue::Bool(true));
        assert_eq!(key(&a), key(&request(&[1.0, 2.0])));
    }

    #[test]
    fn whatever_changes_the_answer_changes_the_key() {
        let base = key(&request(&[1.0, 2.0]));
        assert_ne!(base, key(&request(&[1.0, 2.5])), "data");
        assert_ne!(
            base,
            request_key("other", 1, 0, &request(&[1.0, 2.0])).expect("k"),
            "model"
        );
        assert_ne!(
            base,
            request_key("m", 2, 0, &request(&[1.0, 2.0])).expect("k"),
            "version"
        );
        assert_ne!(
            base,
            request_key("m", 1, 1, &request(&[1.0, 2.0])).expect("k"),
            "another load of the version"
        );
        let mut shape = request(&[1.0, 2.0]);
        shape.inputs[0].shape = vec![2, 1];
        assert_ne!(base, key(&shape), "shape");
        let mut name = request(&[1.0, 2.0]);
        name.inputs[0].name = "z".into();
        assert_ne!(base, key(&name), "input name");
        let mut datatype = request(&[]);
        datatype.inputs[0] =
            Tensor::new("x", vec![1, 2], TensorData::Int32(vec![0, 0])).expect("t");
        let zeros = key(&request(&[0.0, 0.0]));
        assert_ne!(zeros, key(&datatype), "datatype, same bytes");
        let mut wanted = request(&[1.0, 2.0]);
        wanted.outputs.wanted.push(Wanted {
            name: "y".into(),
            binary: false,
            classes: None,
        });
        let plain = key(&wanted);
        assert_ne!(base, plain, "requested outputs");
        wanted.outputs.wanted[0].classes = Some(2);
        assert_ne!(plain, key(&wanted), "classification");
        let mut param = request(&[1.0, 2.0]);
        param
            .params
            .insert("mode".into(), ParamValue::String("fast".into()));
        assert_ne!(base, key(&param), "a parameter a remote predictor gets");
    }

    #[test]
    fn input_order_does_not_matter() {
        let t = |n: &str, v: f32| Tensor::new(n, vec![1], TensorData::Fp32(vec![v])).expect("t");
        let mut ab = request(&[]);
        ab.inputs = vec![t("a", 1.0), t("b", 2.0)];
        let mut ba = request(&[]);
        ba.inputs = vec![t("b", 2.0), t("a", 1.0)];
        assert_eq!(key(&ab), key(&ba));
    }

    #[test]
    fn sequence_requests_are_not_cached() {
        for p in SEQUENCE {
            let mut req = request(&[1.0]);
            req.params.insert((*p).into(), ParamValue::Uint(7));
            assert_eq!(request_key("m", 1, 0, &req), None, "{p}");
        }
    }
}
