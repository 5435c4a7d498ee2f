
use builtin;
use str;

set edit:completion:arg-completer[ivrx] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'ivrx'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'ivrx'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Run the webhook server: IVR flow, live scoring, escalation, transfers, storage'
            cand dial 'Place a call: a real one through Telnyx, or a simulated caller in the sandbox'
            cand watch 'Follow a live conversation: transcript, sentiment trend, the transfer moment'
            cand transfer 'Transfer a call to an agent now (manual override, exactly once)'
            cand analyze 'Post-call analytics over stored conversations: tables, CSV, JSON, charts'
            cand score 'Score text with the configured engine (calibrate what the engine thinks)'
            cand eval 'Play labelled caller scripts through the production session and policy; report precision, recall, misses'
            cand sandbox 'Run the sandbox carrier alone: a local Telnyx Call Control stand-in'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ivrx;serve'= {
            cand --listen 'Address the webhook server listens on, HOST:PORT'
            cand --sandbox-listen 'Address of the embedded sandbox carrier, HOST:PORT'
            cand --db 'Database: a SQLite file, or postgres://USER:PASSWORD@HOST:PORT/DATABASE [default: ivrx.db in the user''s data directory]'
            cand --config 'Configuration file [default: ivrx.toml in the user''s config directory]'
            cand --time-scale 'Run the sandbox clock this many times faster than real time [default: 1, 5 with --demo]'
            cand --log 'Log level filter, e.g. `info`, `ivrx=debug` (RUST_LOG works too)'
            cand --sandbox 'Use the embedded sandbox carrier even when Telnyx credentials are set'
            cand --no-clock-hold 'Let the sandbox clock run on while the server is slow to answer webhooks, as a real carrier does: calls then outrun an overloaded server, which loses webhooks and caller speech (by default the clock stands still once a webhook has waited 100 ms for its answer) [config: sandbox.clock_hold = false]'
            cand --json 'Log as JSON lines instead of text'
            cand --print-config 'Print the effective configuration (secrets masked) and exit'
            cand --demo 'Run a demo: bundled callers go through the IVR and the terminal shows each conversation (on free ports when the default ones are taken)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ivrx;dial'= {
            cand --to 'Number to call (live), or the IVR number the simulated caller dials (sandbox)'
            cand --from 'Caller id (live) [default: the IVR number], or the simulated caller''s number (sandbox)'
            cand --sandbox-url 'Base URL of the sandbox carrier'
            cand --sandbox-api-key 'API key of the sandbox carrier'
            cand --server 'Base URL of the running `ivrx serve`'
            cand --token 'Admin token of the server [default: read from --token-file]'
            cand --token-file 'File holding the admin token, as `ivrx serve` writes it beside its --db (--token wins) [default: admin-token beside the default database]'
            cand --script 'Caller script: a file (say/press/pause/hangup, one step per line) or a bundled caller''s name (calm, frustrated, asks_for_human, interested_buyer, dtmf, hangs_up_during_transfer, waits_in_line)'
            cand --timeout 'Give up waiting for the call to end after this many seconds (sandbox time)'
            cand --calls 'Calls to play in a load test'
            cand --concurrency 'Calls in flight at once in a load test'
            cand --mix 'Scripts and weights, NAME=WEIGHT,… [default: calm=40,frustrated=30,asks_for_human=15,interested_buyer=15 over the bundled callers; every script of --script-dir equally]'
            cand --script-dir 'Play the *.ivrx scripts of this directory (named by file stem) instead of the bundled callers'
            cand --ramp 'Spread the start of the first --concurrency calls over this many seconds (real time)'
            cand --sandbox 'Place a simulated inbound call into a running `ivrx serve --sandbox`, or into a standalone `ivrx sandbox` (the report then comes from the --server it delivers to)'
            cand --interactive 'Type the caller''s lines yourself'
            cand --json 'Print one JSON object (the last line of stdout) instead of the transcript'
            cand --load 'Load test: keep --concurrency simulated calls in flight until --calls have been played'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ivrx;watch'= {
            cand --server 'Base URL of the running `ivrx serve`'
            cand --token 'Admin token of the server [default: read from --token-file]'
            cand --token-file 'File holding the admin token, as `ivrx serve` writes it beside its --db (--token wins) [default: admin-token beside the default database]'
            cand --db 'Replay an ended conversation from this database (a SQLite file or a postgres:// URL), without a server'
            cand --latest 'Follow the newest active conversation (waits for one to start)'
            cand --all 'The board: every call in progress, riskiest first (the default without an id)'
            cand --json 'Print NDJSON events for scripts'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ivrx;transfer'= {
            cand --to 'Transfer to this number'
            cand --queue 'Transfer to this queue''s agents'
            cand --server 'Base URL of the running `ivrx serve`'
            cand --token 'Admin token of the server [default: read from --token-file]'
            cand --token-file 'File holding the admin token, as `ivrx serve` writes it beside its --db (--token wins) [default: admin-token beside the default database]'
            cand --json 'Print the result as JSON'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ivrx;analyze'= {
            cand --db 'Database: a SQLite file, or postgres://USER:PASSWORD@HOST:PORT/DATABASE [default: ivrx.db in the user''s data directory]'
            cand --since 'Only calls that started at or after this time (RFC 3339 or YYYY-MM-DD)'
            cand --until 'Only calls that started before this time (RFC 3339, or YYYY-MM-DD to include that whole day)'
            cand --queue 'Only calls transferred to this queue'
            cand --transferred 'Only transferred calls (`--transferred=false`: only calls that were not)'
            cand --format 'Output format'
            cand --chart 'Write an SVG chart (sentiment timelines, time-to-transfer histogram)'
            cand --html 'Write a self-contained HTML report'
            cand --replay-policy 'Re-run the escalation policy with other thresholds and show what would change'
            cand --import 'Import conversations (JSON lines or a Symbl messages export) and score them; a SQLite ivrx database is copied as it is (e.g. into PostgreSQL: --import ivrx.db --db postgres://…)'
            cand --synthetic 'Generate this many synthetic conversations into the database first (for demos and benchmarks)'
            cand --seed 'Seed for --synthetic (the same seed gives the same calls)'
            cand --top 'Topics listed (every format), and rows of the other lists in the table and HTML outputs (recent calls, trackers, replay changes)'
            cand --decline-window 'Caller utterances in the window that ends at each call''s decline (topics near the decline)'
            cand --min-count 'Least window utterances a topic must appear in to be listed'
            cand --config 'Configuration file (engine and policy)'
            cand --json 'Same as --format json'
            cand --wide 'Every column of the call lists in the tables, however wide (the default columns fit 100)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ivrx;score'= {
            cand --engine 'Engine to score with [default: local]'
            cand --config 'Configuration file (trackers, engine)'
            cand --symbl-conf 'Symbl credentials file [default: ./symbl.conf, then the config and home directories]'
            cand --json 'Print NDJSON: {"text", "score", "label", "trackers": [{"tracker", "phrase"}]}'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ivrx;eval'= {
            cand --config 'Configuration file (menu, queues, trackers, policy) [default: ivrx.toml in the user''s config directory]'
            cand --compare 'A second configuration: play the same scripts with it and show both side by side'
            cand --json 'Print one JSON document: {"dir", "runs": [{"config", "report"}]}'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ivrx;sandbox'= {
            cand --listen 'Address the sandbox API listens on'
            cand --webhook-url 'Where webhooks are delivered. Repeat it for several instances of the application: webhooks then go round-robin over the URLs like a load balancer''s (consecutive webhooks of one call reach different instances), and a URL that refuses the connection, times out or answers 5xx is passed over for the next one'
            cand --failover-url 'Where webhooks go when the webhook URL fails: Telnyx''s retries (attempt 2 onwards) go there'
            cand --api-key 'API key clients must send as `Authorization: Bearer KEY`'
            cand --signing-key 'Ed25519 signing key file (base64 of 32 secret bytes) [default: a fresh key]'
            cand --time-scale 'Run the sandbox clock this many times faster than real time'
            cand --agent 'How a number behaves when called: NUMBER=answer[:SECONDS], refuse, busy[:SECONDS] or no-answer (repeatable)'
            cand --duplicate-rate 'Chaos: fraction of webhooks delivered twice (0..1)'
            cand --reorder-rate 'Chaos: fraction of webhooks delivered out of order (0..1)'
            cand --max-delay-ms 'Chaos: up to this many milliseconds of added delivery delay'
            cand --api-error-rate 'Chaos: fraction of REST requests answered 500 without being executed (0..1)'
            cand --api-rate-limit-rate 'Chaos: fraction of REST requests answered 429 with Retry-After (0..1)'
            cand --api-timeout-rate 'Chaos: fraction of REST requests executed but answered late, as if timed out (0..1)'
            cand --api-drop-rate 'Chaos: fraction of REST requests whose connection is dropped before they run, with no answer (0..1)'
            cand --api-drop-after-rate 'Chaos: fraction of REST requests that run, then their connection is dropped with no answer (0..1)'
            cand --seed 'Seed for the chaos knobs, for reproducible runs'
            cand --no-clock-hold 'Let the sandbox clock run on while the application is slow to answer webhooks, as a real carrier does: calls then outrun an overloaded application, which loses webhooks and caller speech (by default the clock stands still once a webhook has waited 100 ms for its answer)'
            cand --json 'Log as JSON lines instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ivrx;completions'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ivrx;help'= {
            cand serve 'Run the webhook server: IVR flow, live scoring, escalation, transfers, storage'
            cand dial 'Place a call: a real one through Telnyx, or a simulated caller in the sandbox'
            cand watch 'Follow a live conversation: transcript, sentiment trend, the transfer moment'
            cand transfer 'Transfer a call to an agent now (manual override, exactly once)'
            cand analyze 'Post-call analytics over stored conversations: tables, CSV, JSON, charts'
            cand score 'Score text with the configured engine (calibrate what the engine thinks)'
            cand eval 'Play labelled caller scripts through the production session and policy; report precision, recall, misses'
            cand sandbox 'Run the sandbox carrier alone: a local Telnyx Call Control stand-in'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ivrx;help;serve'= {
        }
        &'ivrx;help;dial'= {
        }
        &'ivrx;help;watch'= {
        }
        &'ivrx;help;transfer'= {
        }
        &'ivrx;help;analyze'= {
        }
        &'ivrx;help;score'= {
        }
        &'ivrx;help;eval'= {
        }
        &'ivrx;help;sandbox'= {
        }
        &'ivrx;help;completions'= {
        }
        &'ivrx;help;help'= {
        }
    ]
    $completions[$command]
}
