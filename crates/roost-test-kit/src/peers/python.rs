//! Python command-line tools the tests run against a served document or server: PyPI's
//! `openapi-spec-validator` and `schemathesis`. `.ci/run` installs them; without them, the first use
//! installs them into the cache (as for aiosmtpd), and when that fails too the test says SKIPPED.

use std::path::{Path, PathBuf};

use tokio::process::Command;

/// A Python package's command-line entry point, runnable with the machine's `python3`.
#[derive(Debug, Clone)]
pub struct PythonTool {
    pythonpath: Option<PathBuf>,
    /// Python code that runs the tool's command line with `sys.argv[1:]` as its arguments.
    entry: &'static str,
}

impl PythonTool {
    /// `openapi-spec-validator FILE…`.
    pub fn openapi_spec_validator(cache: impl AsRef<Path>) -> Result<Self, String> {
        Self::new(
            cache.as_ref(),
            "openapi_spec_validator",
            "openapi-spec-validator",
            "import sys; from openapi_spec_validator.__main__ import main; sys.argv[0] = 'openapi-spec-validator'; sys.exit(main())",
        )
    }

    /// `schemathesis` (the `st` command).
    pub fn schemathesis(cache: impl AsRef<Path>) -> Result<Self, String> {
        Self::new(
            cache.as_ref(),
            "schemathesis",
            "schemathesis",
            "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'st'; sys.exit(schemathesis())",
        )
    }

    fn new(cache: &Path, module: &str, package: &str, entry: &'static str) -> Result<Self, String> {
        std::fs::create_dir_all(cache).map_err(|e| format!("cache dir: {e}"))?;
        let pythonpath = super::python_with(cache, module, package)?;
        Ok(Self { pythonpath, entry })
    }

    /// The tool's command, ready for arguments.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("python3");
        cmd.arg("-c").arg(self.entry).kill_on_drop(true);
        if let Some(p) = &self.pythonpath {
            cmd.env("PYTHONPATH", p);
        }
        cmd
    }
}
