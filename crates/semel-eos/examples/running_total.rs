//! A running total per key, exactly once: `payments` records are keyed by account and carry
//! an amount in cents as their value ("1250"); `balances` gets the account's new total after
//! each payment. The total lives in the processor's state store, backed by the changelog topic
//! `running-total-balances-changelog`, so a restarted instance carries on from it.
//!
//! ```text
//! semel serve &
//! cargo run -p semel-eos --example running_total -- 127.0.0.1:9092
//! ```
//! A value that is not a number fails the transform: the transaction is rolled back and
//! retried, and the processor stops with that error after `max_retries` attempts (nothing of
//! the failed transaction becomes visible).

use std::sync::atomic::AtomicBool;

use semel_eos::processor::{InputRecord, KeyState, OutputRecord, Processor, ProcessorConfig, TransformError};
use semel_eos::ClientSettings;

fn add(record: &InputRecord<'_>, state: &mut KeyState<'_>, out: &mut Vec<OutputRecord>) -> Result<(), TransformError> {
    let amount: i64 = std::str::from_utf8(record.value.unwrap_or_default())?.trim().parse()?;
    let total = match state.get() {
        Some(bytes) => std::str::from_utf8(bytes)?.parse::<i64>()?,
        None => 0,
    } + amount;
    state.put(total.to_string().into_bytes())?;
    out.push(OutputRecord { key: record.key.map(<[u8]>::to_vec), value: Some(total.to_string().into_bytes()), ..OutputRecord::default() });
    Ok(())
}

fn main() {
    let bootstrap = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9092".into());
    let mut config = ProcessorConfig::new(ClientSettings::new(bootstrap), "running-total", "payments", "balances");
    config.store = Some("balances".into());
    static STOP: AtomicBool = AtomicBool::new(false);
    if let Err(e) = Processor::new(config, add).run(&STOP) {
        eprintln!("running_total: {e}");
        std::process::exit(1);
    }
}
