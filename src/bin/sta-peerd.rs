fn main() {
    eprintln!("sta-peerd: not implemented yet");
    std::process::exit(2);
}
