fn main() {
    std::process::exit(coracle_cli::main());
}
