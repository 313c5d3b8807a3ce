use osprey_protocol::{Tensor, TensorData};
use osprey_runtimes::candle::{Accelerator, BertEncoder};
use osprey_runtimes::Runtime;
use std::time::Instant;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/minilm/1");
    let t0 = Instant::now();
    let mut enc = BertEncoder::load(&dir, &Accelerator::Cpu).expect("load");
    println!("load {:?}", t0.elapsed());
    let mut tok = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).expect("tok");
    tok.with_padding(None);
    for (text, batch) in [("The quick brown fox jumps over the lazy dog.", 1usize), ("The quick brown fox jumps over the lazy dog.", 32)] {
        let e = tok.encode(text, true).expect("enc");
        let l = e.len();
        let mk = |name: &str, v: &[u32]| {
            let data: Vec<i64> = (0..batch).flat_map(|_| v.iter().map(|&x| x as i64)).collect();
            Tensor::new(name, vec![batch as i64, l as i64], TensorData::Int64(data)).expect("t")
        };
        let inputs = vec![mk("input_ids", e.get_ids()), mk("attention_mask", e.get_attention_mask()), mk("token_type_ids", e.get_type_ids())];
        let out = enc.run(inputs.clone()).expect("run");
        if let TensorData::Fp32(v) = &out[0].data { println!("first5 {:?}", &v[..5]); }
        let n = 50;
        let t = Instant::now();
        for _ in 0..n { enc.run(inputs.clone()).expect("run"); }
        let el = t.elapsed().as_secs_f64();
        println!("batch {batch} len {l}: {:.2} ms/run, {:.0} embeddings/s", el * 1000.0 / n as f64, (n * batch) as f64 / el);
    }
}
