# Sourced by the other scripts: puts the Rust toolchain on PATH the way the user has it
# installed. `sudo` resets PATH (Debian's secure_path), so a cargo in ~/.cargo/bin — root's,
# or the invoking user's when run through sudo — is not found by name. Looks, in order, at
# PATH, $CARGO_HOME, $HOME/.cargo, the sudo user's ~/.cargo (with that user's rustup
# toolchains), /usr/local/cargo; fails with what it tried.
twill_find_cargo() {
  command -v cargo >/dev/null 2>&1 && return 0
  local candidates=() home
  [ -n "${CARGO_HOME:-}" ] && candidates+=("$CARGO_HOME")
  [ -n "${HOME:-}" ] && candidates+=("$HOME/.cargo")
  if [ -n "${SUDO_USER:-}" ]; then
    home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    [ -n "$home" ] && candidates+=("$home/.cargo")
  fi
  candidates+=(/usr/local/cargo)
  for c in "${candidates[@]}"; do
    if [ -x "$c/bin/cargo" ]; then
      export PATH="$c/bin:$PATH"
      export CARGO_HOME="$c"
      # rustup's proxies find their toolchains next to the cargo home they belong to.
      if [ -z "${RUSTUP_HOME:-}" ] && [ -d "$(dirname "$c")/.rustup" ]; then
        export RUSTUP_HOME="$(dirname "$c")/.rustup"
      fi
      return 0
    fi
  done
  echo "cargo (Rust 1.95+) is required and was not found on PATH nor in: ${candidates[*]/%//bin}" >&2
  echo "install it with rustup (https://rustup.rs) and run this script again" >&2
  return 1
}
