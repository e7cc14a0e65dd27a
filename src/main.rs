//! `shardis-server [config-file] [--directive value ...]`, like `redis-server`.

use shardis::config::{parse_cli, usage_text, version_text, CliAction};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--check-system") {
        std::process::exit(shardis::syscheck::run_cli());
    }
    match parse_cli(&args) {
        Ok(CliAction::Run(cfg)) => std::process::exit(shardis::server::run::run(cfg)),
        Ok(CliAction::Version) => println!("{}", version_text()),
        Ok(CliAction::Help) => println!("{}", usage_text()),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
