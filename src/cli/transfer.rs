//! `ivrx transfer`: the manual override, through the server's exactly-once guard.

use std::process::ExitCode;

use serde_json::json;

use super::admin::AdminClient;
use super::{exit, TransferArgs};

/// Asks the running server to transfer a call now.
pub async fn run(args: TransferArgs) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(&args.target)?;
    let body = json!({ "queue": args.queue, "to": args.to });
    let path = format!("/api/v1/conversations/{}/transfer", urlencode(&args.call));
    match client.post(&path, &body).await {
        Ok(v) => {
            if args.json {
                println!("{v}");
            } else {
                let target = args.to.or(args.queue).unwrap_or_else(|| "the support queue".into());
                println!(
                    "transferring conversation {} to {target}",
                    v["conversation_id"].as_str().unwrap_or(&args.call)
                );
            }
            Ok(exit::code(exit::OK))
        }
        Err(e) => {
            if args.json {
                println!("{}", json!({"error": e.to_string(), "code": refusal_code(&e)}));
            }
            eprintln!("error: {e}");
            Ok(exit::code(e.exit_code()))
        }
    }
}

fn refusal_code(e: &super::admin::AdminError) -> String {
    match e {
        super::admin::AdminError::Refused { code, .. } => code.clone(),
        super::admin::AdminError::NotFound(_) => "not_found".into(),
        super::admin::AdminError::Unreachable { .. } => "unreachable".into(),
        _ => "error".into(),
    }
}

/// Percent-encodes a path segment (call control ids contain `:`; keep it readable).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'=' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
