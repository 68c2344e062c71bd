fn main() {
    eprintln!("sta: not implemented yet");
    std::process::exit(2);
}
