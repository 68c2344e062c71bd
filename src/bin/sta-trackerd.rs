fn main() {
    eprintln!("sta-trackerd: not implemented yet");
    std::process::exit(2);
}
