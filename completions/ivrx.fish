# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ivrx_global_optspecs
    string join \n h/help V/version
end

function __fish_ivrx_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ivrx_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ivrx_using_subcommand
    set -l cmd (__fish_ivrx_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ivrx -n "__fish_ivrx_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ivrx -n "__fish_ivrx_needs_command" -s V -l version -d 'Print version'
complete -c ivrx -n "__fish_ivrx_needs_command" -f -a "serve" -d 'Run the webhook server: IVR flow, live scoring, escalation, transfers, storage'
complete -c ivrx -n "__fish_ivrx_needs_command" -f -a "dial" -d 'Place a call: a real one through Telnyx, or a simulated caller in the sandbox'
complete -c ivrx -n "__fish_ivrx_needs_command" -f -a "watch" -d 'Follow a live conversation: transcript, sentiment trend, the transfer moment'
complete -c ivrx -n "__fish_ivrx_needs_command" -f -a "transfer" -d 'Transfer a call to an agent now (manual override, exactly once)'
complete -c ivrx -n "__fish_ivrx_needs_command" -f -a "analyze" -d 'Post-call analytics over stored conversations: tables, CSV, JSON, charts'
complete -c ivrx -n "__fish_ivrx_needs_command" -f -a "score" -d 'Score text with the configured engine (calibrate what the engine thinks)'
complete -c ivrx -n "__fish_ivrx_needs_command" -f -a "eval" -d 'Play labelled caller scripts through the production session and policy; report precision, recall, misses'
complete -c ivrx -n "__fish_ivrx_needs_command" -f -a "sandbox" -d 'Run the sandbox carrier alone: a local Telnyx Call Control stand-in'
complete -c ivrx -n "__fish_ivrx_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c ivrx -n "__fish_ivrx_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ivrx -n "__fish_ivrx_using_subcommand serve" -l listen -d 'Address the webhook server listens on, HOST:PORT' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand serve" -l sandbox-listen -d 'Address of the embedded sandbox carrier, HOST:PORT' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand serve" -l db -d 'Database: a SQLite file, or postgres://USER:PASSWORD@HOST:PORT/DATABASE [default: ivrx.db in the user\'s data directory]' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand serve" -l config -d 'Configuration file [default: ivrx.toml in the user\'s config directory]' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand serve" -l time-scale -d 'Run the sandbox clock this many times faster than real time [default: 1, 5 with --demo]' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand serve" -l log -d 'Log level filter, e.g. `info`, `ivrx=debug` (RUST_LOG works too)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand serve" -l sandbox -d 'Use the embedded sandbox carrier even when Telnyx credentials are set'
complete -c ivrx -n "__fish_ivrx_using_subcommand serve" -l no-clock-hold -d 'Let the sandbox clock run on while the server is slow to answer webhooks, as a real carrier does: calls then outrun an overloaded server, which loses webhooks and caller speech (by default the clock stands still once a webhook has waited 100 ms for its answer) [config: sandbox.clock_hold = false]'
complete -c ivrx -n "__fish_ivrx_using_subcommand serve" -l json -d 'Log as JSON lines instead of text'
complete -c ivrx -n "__fish_ivrx_using_subcommand serve" -l print-config -d 'Print the effective configuration (secrets masked) and exit'
complete -c ivrx -n "__fish_ivrx_using_subcommand serve" -l demo -d 'Run a demo: bundled callers go through the IVR and the terminal shows each conversation (on free ports when the default ones are taken)'
complete -c ivrx -n "__fish_ivrx_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ivrx -n "__fish_ivrx_using_subcommand serve" -s V -l version -d 'Print version'
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l to -d 'Number to call (live), or the IVR number the simulated caller dials (sandbox)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l from -d 'Caller id (live) [default: the IVR number], or the simulated caller\'s number (sandbox)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l sandbox-url -d 'Base URL of the sandbox carrier' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l sandbox-api-key -d 'API key of the sandbox carrier' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l server -d 'Base URL of the running `ivrx serve`' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l token -d 'Admin token of the server [default: read from --token-file]' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l token-file -d 'File holding the admin token, as `ivrx serve` writes it beside its --db (--token wins) [default: admin-token beside the default database]' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l script -d 'Caller script: a file (say/press/pause/hangup, one step per line) or a bundled caller\'s name (calm, frustrated, asks_for_human, interested_buyer, dtmf, hangs_up_during_transfer, waits_in_line)' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l timeout -d 'Give up waiting for the call to end after this many seconds (sandbox time)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l calls -d 'Calls to play in a load test' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l concurrency -d 'Calls in flight at once in a load test' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l mix -d 'Scripts and weights, NAME=WEIGHT,… [default: calm=40,frustrated=30,asks_for_human=15,interested_buyer=15 over the bundled callers; every script of --script-dir equally]' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l script-dir -d 'Play the *.ivrx scripts of this directory (named by file stem) instead of the bundled callers' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l ramp -d 'Spread the start of the first --concurrency calls over this many seconds (real time)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l sandbox -d 'Place a simulated inbound call into a running `ivrx serve --sandbox`, or into a standalone `ivrx sandbox` (the report then comes from the --server it delivers to)'
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l interactive -d 'Type the caller\'s lines yourself'
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l json -d 'Print one JSON object (the last line of stdout) instead of the transcript'
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -l load -d 'Load test: keep --concurrency simulated calls in flight until --calls have been played'
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ivrx -n "__fish_ivrx_using_subcommand dial" -s V -l version -d 'Print version'
complete -c ivrx -n "__fish_ivrx_using_subcommand watch" -l server -d 'Base URL of the running `ivrx serve`' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand watch" -l token -d 'Admin token of the server [default: read from --token-file]' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand watch" -l token-file -d 'File holding the admin token, as `ivrx serve` writes it beside its --db (--token wins) [default: admin-token beside the default database]' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand watch" -l db -d 'Replay an ended conversation from this database (a SQLite file or a postgres:// URL), without a server' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand watch" -l latest -d 'Follow the newest active conversation (waits for one to start)'
complete -c ivrx -n "__fish_ivrx_using_subcommand watch" -l all -d 'The board: every call in progress, riskiest first (the default without an id)'
complete -c ivrx -n "__fish_ivrx_using_subcommand watch" -l json -d 'Print NDJSON events for scripts'
complete -c ivrx -n "__fish_ivrx_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ivrx -n "__fish_ivrx_using_subcommand watch" -s V -l version -d 'Print version'
complete -c ivrx -n "__fish_ivrx_using_subcommand transfer" -l to -d 'Transfer to this number' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand transfer" -l queue -d 'Transfer to this queue\'s agents' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand transfer" -l server -d 'Base URL of the running `ivrx serve`' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand transfer" -l token -d 'Admin token of the server [default: read from --token-file]' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand transfer" -l token-file -d 'File holding the admin token, as `ivrx serve` writes it beside its --db (--token wins) [default: admin-token beside the default database]' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand transfer" -l json -d 'Print the result as JSON'
complete -c ivrx -n "__fish_ivrx_using_subcommand transfer" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ivrx -n "__fish_ivrx_using_subcommand transfer" -s V -l version -d 'Print version'
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l db -d 'Database: a SQLite file, or postgres://USER:PASSWORD@HOST:PORT/DATABASE [default: ivrx.db in the user\'s data directory]' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l since -d 'Only calls that started at or after this time (RFC 3339 or YYYY-MM-DD)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l until -d 'Only calls that started before this time (RFC 3339, or YYYY-MM-DD to include that whole day)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l queue -d 'Only calls transferred to this queue' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l transferred -d 'Only transferred calls (`--transferred=false`: only calls that were not)' -r -f -a "true\t''
false\t''"
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l format -d 'Output format' -r -f -a "table\t'Tables for people'
csv\t'CSV (one row per call) for spreadsheets and pandas'
json\t'One JSON document'"
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l chart -d 'Write an SVG chart (sentiment timelines, time-to-transfer histogram)' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l html -d 'Write a self-contained HTML report' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l replay-policy -d 'Re-run the escalation policy with other thresholds and show what would change' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l import -d 'Import conversations (JSON lines or a Symbl messages export) and score them; a SQLite ivrx database is copied as it is (e.g. into PostgreSQL: --import ivrx.db --db postgres://…)' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l synthetic -d 'Generate this many synthetic conversations into the database first (for demos and benchmarks)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l seed -d 'Seed for --synthetic (the same seed gives the same calls)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l top -d 'Topics listed (every format), and rows of the other lists in the table and HTML outputs (recent calls, trackers, replay changes)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l decline-window -d 'Caller utterances in the window that ends at each call\'s decline (topics near the decline)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l min-count -d 'Least window utterances a topic must appear in to be listed' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l config -d 'Configuration file (engine and policy)' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l json -d 'Same as --format json'
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -l wide -d 'Every column of the call lists in the tables, however wide (the default columns fit 100)'
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ivrx -n "__fish_ivrx_using_subcommand analyze" -s V -l version -d 'Print version'
complete -c ivrx -n "__fish_ivrx_using_subcommand score" -l engine -d 'Engine to score with [default: local]' -r -f -a "local\t'Offline lexicon and rule scorer with trackers (default)'
symbl\t'Symbl.ai Conversation API'"
complete -c ivrx -n "__fish_ivrx_using_subcommand score" -l config -d 'Configuration file (trackers, engine)' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand score" -l symbl-conf -d 'Symbl credentials file [default: ./symbl.conf, then the config and home directories]' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand score" -l json -d 'Print NDJSON: {"text", "score", "label", "trackers": [{"tracker", "phrase"}]}'
complete -c ivrx -n "__fish_ivrx_using_subcommand score" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ivrx -n "__fish_ivrx_using_subcommand score" -s V -l version -d 'Print version'
complete -c ivrx -n "__fish_ivrx_using_subcommand eval" -l config -d 'Configuration file (menu, queues, trackers, policy) [default: ivrx.toml in the user\'s config directory]' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand eval" -l compare -d 'A second configuration: play the same scripts with it and show both side by side' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand eval" -l json -d 'Print one JSON document: {"dir", "runs": [{"config", "report"}]}'
complete -c ivrx -n "__fish_ivrx_using_subcommand eval" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ivrx -n "__fish_ivrx_using_subcommand eval" -s V -l version -d 'Print version'
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l listen -d 'Address the sandbox API listens on' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l webhook-url -d 'Where webhooks are delivered. Repeat it for several instances of the application: webhooks then go round-robin over the URLs like a load balancer\'s (consecutive webhooks of one call reach different instances), and a URL that refuses the connection, times out or answers 5xx is passed over for the next one' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l failover-url -d 'Where webhooks go when the webhook URL fails: Telnyx\'s retries (attempt 2 onwards) go there' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l api-key -d 'API key clients must send as `Authorization: Bearer KEY`' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l signing-key -d 'Ed25519 signing key file (base64 of 32 secret bytes) [default: a fresh key]' -r -F
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l time-scale -d 'Run the sandbox clock this many times faster than real time' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l agent -d 'How a number behaves when called: NUMBER=answer[:SECONDS], refuse, busy[:SECONDS] or no-answer (repeatable)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l duplicate-rate -d 'Chaos: fraction of webhooks delivered twice (0..1)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l reorder-rate -d 'Chaos: fraction of webhooks delivered out of order (0..1)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l max-delay-ms -d 'Chaos: up to this many milliseconds of added delivery delay' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l api-error-rate -d 'Chaos: fraction of REST requests answered 500 without being executed (0..1)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l api-rate-limit-rate -d 'Chaos: fraction of REST requests answered 429 with Retry-After (0..1)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l api-timeout-rate -d 'Chaos: fraction of REST requests executed but answered late, as if timed out (0..1)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l api-drop-rate -d 'Chaos: fraction of REST requests whose connection is dropped before they run, with no answer (0..1)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l api-drop-after-rate -d 'Chaos: fraction of REST requests that run, then their connection is dropped with no answer (0..1)' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l seed -d 'Seed for the chaos knobs, for reproducible runs' -r
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l no-clock-hold -d 'Let the sandbox clock run on while the application is slow to answer webhooks, as a real carrier does: calls then outrun an overloaded application, which loses webhooks and caller speech (by default the clock stands still once a webhook has waited 100 ms for its answer)'
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -l json -d 'Log as JSON lines instead of text'
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ivrx -n "__fish_ivrx_using_subcommand sandbox" -s V -l version -d 'Print version'
complete -c ivrx -n "__fish_ivrx_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ivrx -n "__fish_ivrx_using_subcommand completions" -s V -l version -d 'Print version'
complete -c ivrx -n "__fish_ivrx_using_subcommand help; and not __fish_seen_subcommand_from serve dial watch transfer analyze score eval sandbox completions help" -f -a "serve" -d 'Run the webhook server: IVR flow, live scoring, escalation, transfers, storage'
complete -c ivrx -n "__fish_ivrx_using_subcommand help; and not __fish_seen_subcommand_from serve dial watch transfer analyze score eval sandbox completions help" -f -a "dial" -d 'Place a call: a real one through Telnyx, or a simulated caller in the sandbox'
complete -c ivrx -n "__fish_ivrx_using_subcommand help; and not __fish_seen_subcommand_from serve dial watch transfer analyze score eval sandbox completions help" -f -a "watch" -d 'Follow a live conversation: transcript, sentiment trend, the transfer moment'
complete -c ivrx -n "__fish_ivrx_using_subcommand help; and not __fish_seen_subcommand_from serve dial watch transfer analyze score eval sandbox completions help" -f -a "transfer" -d 'Transfer a call to an agent now (manual override, exactly once)'
complete -c ivrx -n "__fish_ivrx_using_subcommand help; and not __fish_seen_subcommand_from serve dial watch transfer analyze score eval sandbox completions help" -f -a "analyze" -d 'Post-call analytics over stored conversations: tables, CSV, JSON, charts'
complete -c ivrx -n "__fish_ivrx_using_subcommand help; and not __fish_seen_subcommand_from serve dial watch transfer analyze score eval sandbox completions help" -f -a "score" -d 'Score text with the configured engine (calibrate what the engine thinks)'
complete -c ivrx -n "__fish_ivrx_using_subcommand help; and not __fish_seen_subcommand_from serve dial watch transfer analyze score eval sandbox completions help" -f -a "eval" -d 'Play labelled caller scripts through the production session and policy; report precision, recall, misses'
complete -c ivrx -n "__fish_ivrx_using_subcommand help; and not __fish_seen_subcommand_from serve dial watch transfer analyze score eval sandbox completions help" -f -a "sandbox" -d 'Run the sandbox carrier alone: a local Telnyx Call Control stand-in'
complete -c ivrx -n "__fish_ivrx_using_subcommand help; and not __fish_seen_subcommand_from serve dial watch transfer analyze score eval sandbox completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c ivrx -n "__fish_ivrx_using_subcommand help; and not __fish_seen_subcommand_from serve dial watch transfer analyze score eval sandbox completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
