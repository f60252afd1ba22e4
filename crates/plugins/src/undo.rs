//! Undo on failure: every side effect of an ADD registers how to take it back; if the ADD
//! does not reach `commit`, the steps run in reverse order and their own failures are
//! reported on stderr (the original error is what the runtime must see).

use cni_spec::Error;

type Step<'a> = (String, Box<dyn FnOnce() -> Result<(), Error> + 'a>);

/// A stack of compensating actions.
#[derive(Default)]
pub struct Undo<'a> {
    steps: Vec<Step<'a>>,
}

impl<'a> Undo<'a> {
    pub fn new() -> Undo<'a> {
        Undo { steps: Vec::new() }
    }

    /// Registers how to undo the step just done.
    pub fn push(&mut self, what: impl Into<String>, step: impl FnOnce() -> Result<(), Error> + 'a) {
        self.steps.push((what.into(), Box::new(step)));
    }

    /// The ADD succeeded: keep everything.
    pub fn commit(mut self) {
        self.steps.clear();
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        while let Some((what, step)) = self.steps.pop() {
            if let Err(e) = step() {
                eprintln!("undo {what}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn runs_in_reverse_unless_committed() {
        let log = RefCell::new(Vec::new());
        {
            let mut undo = Undo::new();
            undo.push("a", || {
                log.borrow_mut().push("a");
                Ok(())
            });
            undo.push("b", || Err(Error::internal("b failed")));
            undo.push("c", || {
                log.borrow_mut().push("c");
                Ok(())
            });
        }
        assert_eq!(*log.borrow(), ["c", "a"]);
        log.borrow_mut().clear();
        let mut undo = Undo::new();
        undo.push("a", || {
            log.borrow_mut().push("a");
            Ok(())
        });
        undo.commit();
        assert!(log.borrow().is_empty());
    }
}
