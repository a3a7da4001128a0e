//! Properties that are nearly always absent, held behind one pointer that stays null while
//! they are.
//!
//! A PUBLISH's application-message properties take 136 bytes inline, and almost no PUBLISH
//! carries any: inline, they made every move of a [`Publish`](crate::Publish) (decoder,
//! reader, a broker's message) a 240-byte copy. Behind [`Sparse`] they take 8 bytes and cost
//! an allocation only for a message that has some. The browser client keeps them inline.

#[cfg(feature = "server")]
use alloc::boxed::Box;
use core::fmt;
use core::ops::Deref;

/// A set of properties that is usually empty, kept behind a pointer that is null while it is.
///
/// Reads see through it (`Deref`): an absent set reads as the empty one. Writes go through
/// [`Sparse::to_mut`], which allocates the set on the first, so that nothing allocates by
/// reading or by accident.
///
/// Only a build with the `server` side boxes the set. Without it (the browser client, which
/// moves few PUBLISHes), the set stays inline behind the same API: the box's allocation, drop
/// and clone code were 0.1 KiB of the client's gzipped npm package, past its size budget.
#[cfg(feature = "server")]
#[derive(Clone, Default)]
pub struct Sparse<T>(Option<Box<T>>);

/// A set of properties, inline in a build without the `server` side (see the `server` build's
/// documentation of this type, which boxes it).
#[cfg(not(feature = "server"))]
#[derive(Clone, Default)]
pub struct Sparse<T>(T);

/// A property set with a shared empty value for [`Sparse`] to read as when it holds none.
pub trait Empty: Default + 'static {
    /// The empty set.
    fn empty() -> &'static Self;
    /// True when nothing is set.
    fn is_empty(&self) -> bool;
}

#[cfg(feature = "server")]
impl<T: Default> Sparse<T> {
    /// The set, to change it; allocated (empty) on the first call.
    pub fn to_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(|| Box::new(T::default()))
    }
}

#[cfg(not(feature = "server"))]
impl<T: Default> Sparse<T> {
    /// The set, to change it.
    pub fn to_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Empty> Deref for Sparse<T> {
    type Target = T;

    #[cfg(feature = "server")]
    fn deref(&self) -> &T {
        self.0.as_deref().unwrap_or_else(|| T::empty())
    }

    #[cfg(not(feature = "server"))]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// An empty set is not boxed: a message without properties allocates nothing for them.
impl<T: Empty> From<T> for Sparse<T> {
    #[cfg(feature = "server")]
    fn from(set: T) -> Self {
        Self((!set.is_empty()).then(|| Box::new(set)))
    }

    #[cfg(not(feature = "server"))]
    fn from(set: T) -> Self {
        Self(set)
    }
}

/// Compared by what is set: an allocated empty set equals none.
impl<T: Empty + PartialEq> PartialEq for Sparse<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Empty + Eq> Eq for Sparse<T> {}

/// Shown as the set it stands for, boxed or not.
impl<T: Empty + fmt::Debug> fmt::Debug for Sparse<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;
    use crate::MessageProperties;

    /// An absent set reads as the empty one and equals a boxed empty one; an empty set
    /// given to `into` is not boxed, and one with something set is.
    #[test]
    fn an_absent_set_reads_as_the_empty_one() {
        let mut none = Sparse::<MessageProperties>::default();
        assert!(none.is_empty() && none.0.is_none());
        assert_eq!(none, Sparse::from(MessageProperties::default()));
        assert!(Sparse::from(MessageProperties::default()).0.is_none());

        let mut boxed = Sparse::<MessageProperties>::default();
        boxed.to_mut();
        assert!(boxed.0.is_some());
        assert_eq!(boxed, none, "an allocated empty set equals none");

        none.to_mut().message_expiry_interval = Some(5);
        assert_eq!(none.message_expiry_interval, Some(5));
        assert_ne!(none, boxed);
        let set = MessageProperties {
            message_expiry_interval: Some(5),
            ..Default::default()
        };
        assert_eq!(Sparse::from(set.clone()), none);
        assert_eq!(format!("{none:?}"), format!("{set:?}"));
    }
}
