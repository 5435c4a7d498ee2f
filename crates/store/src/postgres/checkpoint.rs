//! `ivrx_checkpoint`, the function that commits a transition in one
//! statement, built from the statements SQLite runs
//! ([`crate::projection::statement`]): what a new event means for the
//! query tables is written once. Each start creates it again when the
//! database holds another version of it (under the migrations' lock).
//!
//! It takes the transition's events, their projection steps as JSON (for
//! each event, an array of steps: the statement's name, then its
//! parameters), the session's state, the webhooks consumed and the requests
//! answered. With an owner, the conversation's lease row is locked first and
//! nothing is written unless the lease is still that owner's at that epoch
//! (SQLSTATE IX001 otherwise); the lease is then extended by `p_term`
//! seconds. Each event is stored once, and its steps run only when it was
//! stored now.

use deadpool_postgres::GenericClient;

use super::connect::Db;
use crate::projection::{sql, statement, Statement, Ty};
use crate::StoreError;

/// The function's name and parameters; its body is [`body`].
const SIGNATURE: &str = "ivrx_checkpoint(
    p_conversation TEXT, p_owner TEXT, p_epoch BIGINT, p_term DOUBLE PRECISION, p_lock_timeout TEXT,
    e_conversations TEXT[], e_ns BIGINT[], e_kinds TEXT[], e_ats TIMESTAMPTZ[], e_offsets BIGINT[],
    e_bodies TEXT[], e_steps TEXT,
    s_conversation TEXT, s_state TEXT, s_ended BOOLEAN, s_updated TIMESTAMPTZ,
    p_processed TEXT[], a_ids BIGINT[], a_bodies TEXT[], p_channel TEXT, p_payload TEXT
)";

/// Creates the function, or replaces another version of it. True when it did.
pub(super) async fn install(client: &impl GenericClient, db: &Db) -> Result<bool, StoreError> {
    let body = body();
    let found = client
        .query_opt(
            "SELECT prosrc FROM pg_proc WHERE proname = 'ivrx_checkpoint' AND pronamespace = current_schema()::regnamespace",
            &[],
        )
        .await
        .map_err(db.err())?;
    if found.is_some_and(|row| row.get::<_, String>(0) == body) {
        return Ok(false);
    }
    let create = format!(
        "CREATE OR REPLACE FUNCTION {SIGNATURE} RETURNS VOID LANGUAGE plpgsql AS $checkpoint${body}$checkpoint$"
    );
    client.batch_execute(&create).await.map_err(db.err())?;
    Ok(true)
}

/// The function's body.
fn body() -> String {
    let event = substitute(sql::EVENT, |k| {
        ["e_conversations[i]", "e_ns[i]", "e_kinds[i]", "e_ats[i]", "e_offsets[i]", "e_bodies[i]"][k - 1].to_string()
    });
    let session =
        substitute(sql::SESSION, |k| ["s_conversation", "s_state", "s_ended", "s_updated"][k - 1].to_string());
    let processed = substitute(sql::WEBHOOK_PROCESSED, |_| "v_id".to_string());
    let steps: String =
        statement::ALL.iter().map(|s| format!("\n            WHEN '{}' THEN\n{};", s.name, step(s))).collect();
    format!(
        "
DECLARE
    held RECORD;
    steps JSONB;
    step JSONB;
    v_id TEXT;
BEGIN
    IF p_lock_timeout IS NOT NULL THEN
        PERFORM set_config('lock_timeout', p_lock_timeout, true);
    END IF;
    IF p_owner IS NOT NULL THEN
        SELECT owner, epoch INTO held FROM leases WHERE conversation_id = p_conversation FOR UPDATE;
        IF NOT FOUND OR held.owner <> p_owner OR held.epoch <> p_epoch THEN
            RAISE EXCEPTION 'the lease on conversation % is no longer held by % at epoch %',
                p_conversation, p_owner, p_epoch USING ERRCODE = 'IX001';
        END IF;
    END IF;
    IF cardinality(e_ns) > 0 THEN
        steps := e_steps::jsonb;
    END IF;
    FOR i IN 1 .. coalesce(cardinality(e_ns), 0) LOOP
        {event};
        CONTINUE WHEN NOT FOUND;
        FOR j IN 0 .. jsonb_array_length(steps -> (i - 1)) - 1 LOOP
            step := steps -> (i - 1) -> j;
            CASE step ->> 0{steps}
            END CASE;
        END LOOP;
    END LOOP;
    IF s_state IS NOT NULL THEN
        {session};
    END IF;
    FOREACH v_id IN ARRAY coalesce(p_processed, '{{}}') LOOP
        {processed};
    END LOOP;
    FOR i IN 1 .. coalesce(cardinality(a_ids), 0) LOOP
        UPDATE requests SET answer = a_bodies[i] WHERE id = a_ids[i] AND answer IS NULL;
    END LOOP;
    IF p_payload IS NOT NULL THEN
        PERFORM pg_notify(p_channel, p_payload);
    END IF;
    IF p_owner IS NOT NULL THEN
        UPDATE leases SET expires_at = now() + make_interval(secs => p_term) WHERE conversation_id = p_conversation;
    END IF;
END
"
    )
}

/// A projection statement whose parameter `$k` is read from the step's
/// `k`-th element and cast to its type.
fn step(s: &Statement) -> String {
    substitute(s.sql, |k| {
        let cast = match s.params[k - 1] {
            Ty::Text => "",
            Ty::Int => "::bigint",
            Ty::Float => "::double precision",
            Ty::Bool => "::boolean",
            Ty::Time => "::timestamptz",
        };
        format!("(step ->> {k}){cast}")
    })
}

/// `sql` with each placeholder `$k` replaced by `arg(k)`.
fn substitute(sql: &str, arg: impl Fn(usize) -> String) -> String {
    let mut out = String::with_capacity(sql.len() * 2);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits = rest[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
        match rest[at + 1..at + 1 + digits].parse::<usize>() {
            Ok(k) => out.push_str(&arg(k)),
            Err(_) => out.push('$'),
        }
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_names_a_type_for_each_placeholder() {
        for s in statement::ALL {
            let most = std::cell::Cell::new(0);
            substitute(s.sql, |k| {
                most.set(most.get().max(k));
                String::new()
            });
            assert_eq!(most.get(), s.params.len(), "{}", s.name);
        }
    }

    #[test]
    fn placeholders_are_replaced_whole() {
        let got = substitute("a = $1 AND b = $12 OR c = $2", |k| format!("<{k}>"));
        assert_eq!(got, "a = <1> AND b = <12> OR c = <2>");
        assert_eq!(substitute("cost $ 5", |_| "x".into()), "cost $ 5");
    }

    #[test]
    fn the_body_runs_every_statement_and_no_placeholder_is_left() {
        let body = body();
        for s in statement::ALL {
            assert!(body.contains(&format!("WHEN '{}' THEN", s.name)), "{}", s.name);
        }
        assert!(!body.contains('$'), "{body}");
        assert_eq!(body, super::body(), "the same text every time");
    }
}
