//! `ivrx transfer`: the manual override, through the server's exactly-once guard.

use std::process::ExitCode;

use serde_json::json;

use super::admin::AdminClient;
use super::{exit, TransferArgs};
use crate::http::url_path;

/// Asks the running server to transfer a call now.
pub async fn run(args: TransferArgs) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(&args.target)?;
    let body = json!({ "queue": args.queue, "to": args.to });
    let path = format!("/api/v1/conversations/{}/transfer", url_path::encode(&args.call, url_path::SEGMENT));
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
                println!("{}", json!({"error": e.to_string(), "code": e.code()}));
            }
            Err(e.into())
        }
    }
}
