//! The coverage corpus (`tests/corpus/*.proto`), one module per package.
#![allow(missing_docs)]

macro_rules! corpus {
    ($file:literal) => {
        include!(concat!(env!("OUT_DIR"), "/corpus/", $file));
    };
}

/// The file without a package.
pub mod nopkg {
    corpus!("_.rs");
}

pub mod corpus {
    pub mod scalars {
        corpus!("corpus.scalars.rs");
    }
    pub mod proto3 {
        corpus!("corpus.proto3.rs");
    }
    pub mod nested {
        corpus!("corpus.nested.rs");
    }
    pub mod enums {
        corpus!("corpus.enums.rs");
    }
    pub mod oneofs {
        corpus!("corpus.oneofs.rs");
    }
    pub mod maps {
        corpus!("corpus.maps.rs");
    }
    pub mod groups {
        corpus!("corpus.groups.rs");
    }
    pub mod wkt {
        corpus!("corpus.wkt.rs");
    }
    pub mod very {
        pub mod deeply {
            pub mod nested {
                pub mod package_name {
                    pub mod v1 {
                        corpus!("corpus.very.deeply.nested.package_name.v1.rs");
                    }
                }
            }
        }
    }
}

pub mod a {
    pub mod b {
        corpus!("a.b.rs");
    }
}

pub mod c {
    pub mod d {
        corpus!("c.d.rs");
    }
}

/// `google/protobuf/descriptor.proto`, generated as persistent types.
pub mod descriptor {
    pub mod google {
        pub mod protobuf {
            corpus!("descriptor/google.protobuf.rs");
        }
    }
}
