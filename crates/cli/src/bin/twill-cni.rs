fn main() {
    plugins::run_from_args()
}
