//! `shardis-server [config-file] [--directive value ...]`, like `redis-server`;
//! `shardis-server --check-rdb FILE` (or the binary run as `redis-check-rdb FILE`) validates an
//! RDB file without starting a server.

use shardis::config::{parse_cli, usage_text, version_text, CliAction};

fn main() {
    let argv0 = std::env::args().next().unwrap_or_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let invoked_as = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if invoked_as == "redis-check-rdb" || args.first().map(String::as_str) == Some("--check-rdb") {
        let file = if invoked_as == "redis-check-rdb" {
            args.first()
        } else {
            args.get(1)
        };
        let Some(file) = file else {
            eprintln!("Usage: {argv0} <rdb-file-name>");
            std::process::exit(1);
        };
        std::process::exit(shardis::persistence::check::run(file));
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
