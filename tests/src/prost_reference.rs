//! prost-generated types for the corpus, the reference the differential
//! wire test compares pbpersist's generated types against.
#![allow(missing_docs, clippy::all)]

macro_rules! prost_file {
    ($file:literal) => {
        include!(concat!(env!("OUT_DIR"), "/prost/", $file));
    };
}

pub mod corpus {
    pub mod annotations {
        prost_file!("corpus.annotations.rs");
    }
    pub mod annotated {
        prost_file!("corpus.annotated.rs");
    }
    pub mod scalars {
        prost_file!("corpus.scalars.rs");
    }
    pub mod proto3 {
        prost_file!("corpus.proto3.rs");
    }
    pub mod nested {
        prost_file!("corpus.nested.rs");
    }
    pub mod enums {
        prost_file!("corpus.enums.rs");
    }
    pub mod oneofs {
        prost_file!("corpus.oneofs.rs");
    }
    pub mod maps {
        prost_file!("corpus.maps.rs");
    }
    pub mod groups {
        prost_file!("corpus.groups.rs");
    }
    pub mod wkt {
        prost_file!("corpus.wkt.rs");
    }
    pub mod very {
        pub mod deeply {
            pub mod nested {
                pub mod package_name {
                    pub mod v1 {
                        prost_file!("corpus.very.deeply.nested.package_name.v1.rs");
                    }
                }
            }
        }
    }
}

pub mod a {
    pub mod b {
        prost_file!("a.b.rs");
    }
}

pub mod c {
    pub mod d {
        prost_file!("c.d.rs");
    }
}

pub mod demo {
    prost_file!("demo.rs");
}

pub mod google {
    pub mod protobuf {
        prost_file!("google.protobuf.rs");
    }
}

pub mod pbpersist {
    prost_file!("pbpersist.rs");
}

prost_file!("dispatch.rs");
