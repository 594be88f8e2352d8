//! Collects every error of an item, so one compile reports them all.

/// The errors found so far in one item.
#[derive(Default)]
pub(crate) struct Errors(Vec<syn::Error>);

impl Errors {
    /// Records an error and goes on.
    pub fn push(&mut self, error: syn::Error) {
        self.0.push(error);
    }

    /// The value of `result`, or `None` after recording its error.
    pub fn ok<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    /// How many errors were recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `value` when no error was recorded, otherwise all errors as one.
    pub fn finish<T>(self, value: T) -> syn::Result<T> {
        let mut errors = self.0.into_iter();
        match errors.next() {
            None => Ok(value),
            Some(mut first) => {
                first.extend(errors);
                Err(first)
            }
        }
    }
}
