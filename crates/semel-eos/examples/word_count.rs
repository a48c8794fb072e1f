//! Word count, exactly once, in two processors (Kafka Streams would put a repartition topic
//! between them, and so does this): `split` turns each line of `lines` into one record per
//! word, keyed by the word, into `words`; `count` keeps the count of each word (its state is
//! per key, and every record of a word now lands in the same partition) and writes the running
//! count to `word-counts`.
//!
//! ```text
//! semel serve &                                  # or any Kafka cluster
//! kafka-topics --create --topic lines; ... words; ... word-counts   (or let auto-creation do it)
//! cargo run -p semel-eos --example word_count -- 127.0.0.1:9092
//! ```
//! Runs until killed; killing it (even with kill -9) loses and duplicates nothing.

use std::sync::atomic::AtomicBool;

use semel_eos::processor::{InputRecord, KeyState, OutputRecord, Processor, ProcessorConfig, TransformError};
use semel_eos::ClientSettings;

fn split(record: &InputRecord<'_>, _: &mut KeyState<'_>, out: &mut Vec<OutputRecord>) -> Result<(), TransformError> {
    let line = std::str::from_utf8(record.value.unwrap_or_default())?;
    for word in line.split_whitespace() {
        let word = word.to_lowercase();
        out.push(OutputRecord { key: Some(word.clone().into_bytes()), value: Some(word.into_bytes()), ..OutputRecord::default() });
    }
    Ok(())
}

fn count(record: &InputRecord<'_>, state: &mut KeyState<'_>, out: &mut Vec<OutputRecord>) -> Result<(), TransformError> {
    let n = state.get().map(|c| std::str::from_utf8(c).map(str::parse::<u64>)).transpose()?.transpose()?.unwrap_or(0) + 1;
    state.put(n.to_string().into_bytes())?;
    out.push(OutputRecord { key: record.key.map(<[u8]>::to_vec), value: Some(n.to_string().into_bytes()), ..OutputRecord::default() });
    Ok(())
}

fn main() {
    let bootstrap = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9092".into());
    let client = ClientSettings::new(bootstrap);
    let splitter = ProcessorConfig::new(client.clone(), "word-count-split", "lines", "words");
    let mut counter = ProcessorConfig::new(client, "word-count", "words", "word-counts");
    counter.store = Some("counts".into());
    static STOP: AtomicBool = AtomicBool::new(false);
    let split = std::thread::spawn(move || Processor::new(splitter, split).run(&STOP));
    let count = std::thread::spawn(move || Processor::new(counter, count).run(&STOP));
    for (name, thread) in [("split", split), ("count", count)] {
        if let Err(e) = thread.join().expect("processor thread") {
            eprintln!("word_count: {name}: {e}");
            std::process::exit(1);
        }
    }
}
