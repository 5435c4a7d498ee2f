
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'ivrx' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'ivrx'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'ivrx' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the webhook server: IVR flow, live scoring, escalation, transfers, storage')
            [CompletionResult]::new('dial', 'dial', [CompletionResultType]::ParameterValue, 'Place a call: a real one through Telnyx, or a simulated caller in the sandbox')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Follow a live conversation: transcript, sentiment trend, the transfer moment')
            [CompletionResult]::new('transfer', 'transfer', [CompletionResultType]::ParameterValue, 'Transfer a call to an agent now (manual override, exactly once)')
            [CompletionResult]::new('analyze', 'analyze', [CompletionResultType]::ParameterValue, 'Post-call analytics over stored conversations: tables, CSV, JSON, charts')
            [CompletionResult]::new('score', 'score', [CompletionResultType]::ParameterValue, 'Score text with the configured engine (calibrate what the engine thinks)')
            [CompletionResult]::new('eval', 'eval', [CompletionResultType]::ParameterValue, 'Play labelled caller scripts through the production session and policy; report precision, recall, misses')
            [CompletionResult]::new('sandbox', 'sandbox', [CompletionResultType]::ParameterValue, 'Run the sandbox carrier alone: a local Telnyx Call Control stand-in')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ivrx;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address the webhook server listens on, HOST:PORT')
            [CompletionResult]::new('--sandbox-listen', '--sandbox-listen', [CompletionResultType]::ParameterName, 'Address of the embedded sandbox carrier, HOST:PORT')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'Database: a SQLite file, or postgres://USER:PASSWORD@HOST:PORT/DATABASE [default: ivrx.db in the user''s data directory]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file [default: ivrx.toml in the user''s config directory]')
            [CompletionResult]::new('--time-scale', '--time-scale', [CompletionResultType]::ParameterName, 'Run the sandbox clock this many times faster than real time [default: 1, 5 with --demo]')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'Log level filter, e.g. `info`, `ivrx=debug` (RUST_LOG works too)')
            [CompletionResult]::new('--sandbox', '--sandbox', [CompletionResultType]::ParameterName, 'Use the embedded sandbox carrier even when Telnyx credentials are set')
            [CompletionResult]::new('--no-clock-hold', '--no-clock-hold', [CompletionResultType]::ParameterName, 'Let the sandbox clock run on while the server is slow to answer webhooks, as a real carrier does: calls then outrun an overloaded server, which loses webhooks and caller speech (by default the clock stands still once a webhook has waited 100 ms for its answer) [config: sandbox.clock_hold = false]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Log as JSON lines instead of text')
            [CompletionResult]::new('--print-config', '--print-config', [CompletionResultType]::ParameterName, 'Print the effective configuration (secrets masked) and exit')
            [CompletionResult]::new('--demo', '--demo', [CompletionResultType]::ParameterName, 'Run a demo: bundled callers go through the IVR and the terminal shows each conversation (on free ports when the default ones are taken)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ivrx;dial' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Number to call (live), or the IVR number the simulated caller dials (sandbox)')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Caller id (live) [default: the IVR number], or the simulated caller''s number (sandbox)')
            [CompletionResult]::new('--sandbox-url', '--sandbox-url', [CompletionResultType]::ParameterName, 'Base URL of the sandbox carrier')
            [CompletionResult]::new('--sandbox-api-key', '--sandbox-api-key', [CompletionResultType]::ParameterName, 'API key of the sandbox carrier')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Base URL of the running `ivrx serve`')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Admin token of the server [default: read from --token-file]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'File holding the admin token, as `ivrx serve` writes it beside its --db (--token wins) [default: admin-token beside the default database]')
            [CompletionResult]::new('--script', '--script', [CompletionResultType]::ParameterName, 'Caller script: a file (say/press/pause/hangup, one step per line) or a bundled caller''s name (calm, frustrated, asks_for_human, interested_buyer, dtmf, hangs_up_during_transfer, waits_in_line)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up waiting for the call to end after this many seconds (sandbox time)')
            [CompletionResult]::new('--calls', '--calls', [CompletionResultType]::ParameterName, 'Calls to play in a load test')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Calls in flight at once in a load test')
            [CompletionResult]::new('--mix', '--mix', [CompletionResultType]::ParameterName, 'Scripts and weights, NAME=WEIGHT,… [default: calm=40,frustrated=30,asks_for_human=15,interested_buyer=15 over the bundled callers; every script of --script-dir equally]')
            [CompletionResult]::new('--script-dir', '--script-dir', [CompletionResultType]::ParameterName, 'Play the *.ivrx scripts of this directory (named by file stem) instead of the bundled callers')
            [CompletionResult]::new('--ramp', '--ramp', [CompletionResultType]::ParameterName, 'Spread the start of the first --concurrency calls over this many seconds (real time)')
            [CompletionResult]::new('--sandbox', '--sandbox', [CompletionResultType]::ParameterName, 'Place a simulated inbound call into a running `ivrx serve --sandbox`, or into a standalone `ivrx sandbox` (the report then comes from the --server it delivers to)')
            [CompletionResult]::new('--interactive', '--interactive', [CompletionResultType]::ParameterName, 'Type the caller''s lines yourself')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object (the last line of stdout) instead of the transcript')
            [CompletionResult]::new('--load', '--load', [CompletionResultType]::ParameterName, 'Load test: keep --concurrency simulated calls in flight until --calls have been played')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ivrx;watch' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Base URL of the running `ivrx serve`')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Admin token of the server [default: read from --token-file]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'File holding the admin token, as `ivrx serve` writes it beside its --db (--token wins) [default: admin-token beside the default database]')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'Replay an ended conversation from this database (a SQLite file or a postgres:// URL), without a server')
            [CompletionResult]::new('--latest', '--latest', [CompletionResultType]::ParameterName, 'Follow the newest active conversation (waits for one to start)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'The board: every call in progress, riskiest first (the default without an id)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print NDJSON events for scripts')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ivrx;transfer' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Transfer to this number')
            [CompletionResult]::new('--queue', '--queue', [CompletionResultType]::ParameterName, 'Transfer to this queue''s agents')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Base URL of the running `ivrx serve`')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Admin token of the server [default: read from --token-file]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'File holding the admin token, as `ivrx serve` writes it beside its --db (--token wins) [default: admin-token beside the default database]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the result as JSON')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ivrx;analyze' {
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'Database: a SQLite file, or postgres://USER:PASSWORD@HOST:PORT/DATABASE [default: ivrx.db in the user''s data directory]')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only calls that started at or after this time (RFC 3339 or YYYY-MM-DD)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Only calls that started before this time (RFC 3339, or YYYY-MM-DD to include that whole day)')
            [CompletionResult]::new('--queue', '--queue', [CompletionResultType]::ParameterName, 'Only calls transferred to this queue')
            [CompletionResult]::new('--transferred', '--transferred', [CompletionResultType]::ParameterName, 'Only transferred calls (`--transferred=false`: only calls that were not)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--chart', '--chart', [CompletionResultType]::ParameterName, 'Write an SVG chart (sentiment timelines, time-to-transfer histogram)')
            [CompletionResult]::new('--html', '--html', [CompletionResultType]::ParameterName, 'Write a self-contained HTML report')
            [CompletionResult]::new('--replay-policy', '--replay-policy', [CompletionResultType]::ParameterName, 'Re-run the escalation policy with other thresholds and show what would change')
            [CompletionResult]::new('--import', '--import', [CompletionResultType]::ParameterName, 'Import conversations (JSON lines or a Symbl messages export) and score them; a SQLite ivrx database is copied as it is (e.g. into PostgreSQL: --import ivrx.db --db postgres://…)')
            [CompletionResult]::new('--synthetic', '--synthetic', [CompletionResultType]::ParameterName, 'Generate this many synthetic conversations into the database first (for demos and benchmarks)')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Seed for --synthetic (the same seed gives the same calls)')
            [CompletionResult]::new('--top', '--top', [CompletionResultType]::ParameterName, 'Topics listed (every format), and rows of the other lists in the table and HTML outputs (recent calls, trackers, replay changes)')
            [CompletionResult]::new('--decline-window', '--decline-window', [CompletionResultType]::ParameterName, 'Caller utterances in the window that ends at each call''s decline (topics near the decline)')
            [CompletionResult]::new('--min-count', '--min-count', [CompletionResultType]::ParameterName, 'Least window utterances a topic must appear in to be listed')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (engine and policy)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Same as --format json')
            [CompletionResult]::new('--wide', '--wide', [CompletionResultType]::ParameterName, 'Every column of the call lists in the tables, however wide (the default columns fit 100)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ivrx;score' {
            [CompletionResult]::new('--engine', '--engine', [CompletionResultType]::ParameterName, 'Engine to score with [default: local]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (trackers, engine)')
            [CompletionResult]::new('--symbl-conf', '--symbl-conf', [CompletionResultType]::ParameterName, 'Symbl credentials file [default: ./symbl.conf, then the config and home directories]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print NDJSON: {"text", "score", "label", "trackers": [{"tracker", "phrase"}]}')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ivrx;eval' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (menu, queues, trackers, policy) [default: ivrx.toml in the user''s config directory]')
            [CompletionResult]::new('--compare', '--compare', [CompletionResultType]::ParameterName, 'A second configuration: play the same scripts with it and show both side by side')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document: {"dir", "runs": [{"config", "report"}]}')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ivrx;sandbox' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address the sandbox API listens on')
            [CompletionResult]::new('--webhook-url', '--webhook-url', [CompletionResultType]::ParameterName, 'Where webhooks are delivered. Repeat it for several instances of the application: webhooks then go round-robin over the URLs like a load balancer''s (consecutive webhooks of one call reach different instances), and a URL that refuses the connection, times out or answers 5xx is passed over for the next one')
            [CompletionResult]::new('--failover-url', '--failover-url', [CompletionResultType]::ParameterName, 'Where webhooks go when the webhook URL fails: Telnyx''s retries (attempt 2 onwards) go there')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key clients must send as `Authorization: Bearer KEY`')
            [CompletionResult]::new('--signing-key', '--signing-key', [CompletionResultType]::ParameterName, 'Ed25519 signing key file (base64 of 32 secret bytes) [default: a fresh key]')
            [CompletionResult]::new('--time-scale', '--time-scale', [CompletionResultType]::ParameterName, 'Run the sandbox clock this many times faster than real time')
            [CompletionResult]::new('--agent', '--agent', [CompletionResultType]::ParameterName, 'How a number behaves when called: NUMBER=answer[:SECONDS], refuse, busy[:SECONDS] or no-answer (repeatable)')
            [CompletionResult]::new('--duplicate-rate', '--duplicate-rate', [CompletionResultType]::ParameterName, 'Chaos: fraction of webhooks delivered twice (0..1)')
            [CompletionResult]::new('--reorder-rate', '--reorder-rate', [CompletionResultType]::ParameterName, 'Chaos: fraction of webhooks delivered out of order (0..1)')
            [CompletionResult]::new('--max-delay-ms', '--max-delay-ms', [CompletionResultType]::ParameterName, 'Chaos: up to this many milliseconds of added delivery delay')
            [CompletionResult]::new('--api-error-rate', '--api-error-rate', [CompletionResultType]::ParameterName, 'Chaos: fraction of REST requests answered 500 without being executed (0..1)')
            [CompletionResult]::new('--api-rate-limit-rate', '--api-rate-limit-rate', [CompletionResultType]::ParameterName, 'Chaos: fraction of REST requests answered 429 with Retry-After (0..1)')
            [CompletionResult]::new('--api-timeout-rate', '--api-timeout-rate', [CompletionResultType]::ParameterName, 'Chaos: fraction of REST requests executed but answered late, as if timed out (0..1)')
            [CompletionResult]::new('--api-drop-rate', '--api-drop-rate', [CompletionResultType]::ParameterName, 'Chaos: fraction of REST requests whose connection is dropped before they run, with no answer (0..1)')
            [CompletionResult]::new('--api-drop-after-rate', '--api-drop-after-rate', [CompletionResultType]::ParameterName, 'Chaos: fraction of REST requests that run, then their connection is dropped with no answer (0..1)')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Seed for the chaos knobs, for reproducible runs')
            [CompletionResult]::new('--no-clock-hold', '--no-clock-hold', [CompletionResultType]::ParameterName, 'Let the sandbox clock run on while the application is slow to answer webhooks, as a real carrier does: calls then outrun an overloaded application, which loses webhooks and caller speech (by default the clock stands still once a webhook has waited 100 ms for its answer)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Log as JSON lines instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ivrx;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ivrx;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the webhook server: IVR flow, live scoring, escalation, transfers, storage')
            [CompletionResult]::new('dial', 'dial', [CompletionResultType]::ParameterValue, 'Place a call: a real one through Telnyx, or a simulated caller in the sandbox')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Follow a live conversation: transcript, sentiment trend, the transfer moment')
            [CompletionResult]::new('transfer', 'transfer', [CompletionResultType]::ParameterValue, 'Transfer a call to an agent now (manual override, exactly once)')
            [CompletionResult]::new('analyze', 'analyze', [CompletionResultType]::ParameterValue, 'Post-call analytics over stored conversations: tables, CSV, JSON, charts')
            [CompletionResult]::new('score', 'score', [CompletionResultType]::ParameterValue, 'Score text with the configured engine (calibrate what the engine thinks)')
            [CompletionResult]::new('eval', 'eval', [CompletionResultType]::ParameterValue, 'Play labelled caller scripts through the production session and policy; report precision, recall, misses')
            [CompletionResult]::new('sandbox', 'sandbox', [CompletionResultType]::ParameterValue, 'Run the sandbox carrier alone: a local Telnyx Call Control stand-in')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ivrx;help;serve' {
            break
        }
        'ivrx;help;dial' {
            break
        }
        'ivrx;help;watch' {
            break
        }
        'ivrx;help;transfer' {
            break
        }
        'ivrx;help;analyze' {
            break
        }
        'ivrx;help;score' {
            break
        }
        'ivrx;help;eval' {
            break
        }
        'ivrx;help;sandbox' {
            break
        }
        'ivrx;help;completions' {
            break
        }
        'ivrx;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
