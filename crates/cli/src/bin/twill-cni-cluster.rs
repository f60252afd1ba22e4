fn main() {
    plugins::run_cluster_from_args()
}
