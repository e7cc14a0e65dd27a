fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match shardis::config::Config::from_args(&args) {
        Ok(c) => println!("shardis-server (engine under construction), port {}", c.port),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
