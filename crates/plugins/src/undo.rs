//! Failure handling of the verbs. ADD: every side effect registers how to take it back; if
//! the ADD does not reach `commit`, the steps run in reverse order and their own failures are
//! reported on stderr (the original error is what the runtime must see). DEL and GC: every
//! step runs whatever failed before it, and the first failure is reported ([`first_error`]).

use cni_spec::Error;
use nl::{Handle, Link};

use crate::kernel::nl_error;

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

    /// Registers deleting `link`, just created as a `kind` (veth, macvlan) through `nl`.
    pub fn push_link_del(&mut self, kind: &str, nl: &'a Handle, link: &Link) {
        let index = link.index;
        self.push(format!("delete {kind} {}", link.name), move || nl.link_del(index).map_err(nl_error));
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

/// DEL and GC keep going and report the first failure.
pub fn first_error(errors: Vec<Error>) -> Result<(), Error> {
    errors.into_iter().next().map_or(Ok(()), Err)
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

    #[test]
    fn first_error_wins() {
        assert!(first_error(Vec::new()).is_ok());
        let e = first_error(vec![Error::internal("one"), Error::internal("two")]).unwrap_err();
        assert_eq!(e.msg, "one");
    }
}
