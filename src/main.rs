//! `shardis-server [config-file] [--directive value ...]`, like `redis-server`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match shardis::config::Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    std::process::exit(shardis::server::run::run(cfg));
}
