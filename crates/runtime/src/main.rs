//! `berth-runtime`: runc's command line over the berth-runtime library. Parses flags, calls one
//! library function, prints the result; errors go to stderr (and `--log`) with exit status 1,
//! like runc. Stays single-threaded: `create`, `run` and `exec` fork from this process.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    let logger = cli::log::Logger::new(args.log.as_deref(), &args.log_format, args.debug);
    logger.debug(&format!(
        "berth-runtime {} (spec {}): {}",
        env!("CARGO_PKG_VERSION"),
        cli::SPEC_VERSION,
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    ));
    match cli::dispatch(&args, &logger) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            logger.error(&format!("{e:#}"));
            let code = e.downcast_ref::<cli::CodedError>().map_or(1, |c| c.code);
            std::process::exit(code);
        }
    }
}
