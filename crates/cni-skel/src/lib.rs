//! cni-skel
