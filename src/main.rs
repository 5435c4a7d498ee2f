fn main() -> std::process::ExitCode {
    ivrx::cli::main()
}
