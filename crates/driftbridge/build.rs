//! Links the `driftbridge` binary with packed relative relocations (`-z pack-relative-relocs`,
//! DT_RELR) where the linker and the C library support them (GNU ld 2.38 and glibc 2.36, or
//! later). The loader reads the relocation table of a position-independent binary in full at
//! every start; packed, ours shrinks from 1.5 MB to 19 KB, and every command's resident memory
//! with it (docs/BENCHMARKS.md, "Packed relocations"). Elsewhere the binary is linked as before.
//!
//! Whether to pass the flag is decided by linking and running a small C program with it,
//! through the same linker rustc will use: an older glibc cannot load such a binary, and an
//! older ld refuses or ignores the flag.

use std::env;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const FLAG: &str = "-Wl,-z,pack-relative-relocs";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let target = env::var("TARGET").unwrap_or_default();
    let host = env::var("HOST").unwrap_or_default();
    // Only a native glibc build can run the probe.
    if target == host && target.ends_with("-linux-gnu") && probe() {
        println!("cargo:rustc-link-arg-bins={FLAG}");
    }
}

/// Links a program that needs a relative relocation with the flag, and runs it.
fn probe() -> bool {
    let Some(out) = env::var_os("OUT_DIR").map(PathBuf::from) else {
        return false;
    };
    let source = out.join("relr_probe.c");
    let program = out.join("relr_probe");
    let written = fs::write(
        &source,
        "static int answer = 0;\nint *at = &answer;\nint main(void) { return *at; }\n",
    );
    let linker = env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".into());
    let quiet = |c: &mut Command| {
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    written.is_ok()
        && quiet(
            Command::new(linker)
                .arg(&source)
                .arg("-o")
                .arg(&program)
                .arg("-fPIE")
                .arg("-pie")
                .arg(FLAG)
                .arg("-Wl,--fatal-warnings"),
        )
        && quiet(&mut Command::new(&program))
}
