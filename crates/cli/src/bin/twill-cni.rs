fn main() {
    twill_plugins::run_from_args()
}
