/**
 * A two-method Connect service for the tests, described at run time from a
 * FileDescriptorProto (no code generation): Sleep waits `value` ms under the
 * call's context and answers what it saw; Ticks streams `value` messages.
 * The messages are the well-known wrapper types.
 */
import { create, createFileRegistry } from "@bufbuild/protobuf";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_wrappers,
  type Int32ValueSchema,
  type StringValueSchema,
} from "@bufbuild/protobuf/wkt";

const proto = create(FileDescriptorProtoSchema, {
  name: "taproot/test/sleeper.proto",
  package: "taproot.test",
  syntax: "proto3",
  dependency: ["google/protobuf/wrappers.proto"],
  service: [
    {
      name: "Sleeper",
      method: [
        {
          name: "Sleep",
          inputType: ".google.protobuf.Int32Value",
          outputType: ".google.protobuf.StringValue",
        },
        {
          name: "Ticks",
          inputType: ".google.protobuf.Int32Value",
          outputType: ".google.protobuf.StringValue",
          serverStreaming: true,
        },
      ],
    },
  ],
});

const registry = createFileRegistry(proto, (name) =>
  name === "google/protobuf/wrappers.proto" ? file_google_protobuf_wrappers : undefined,
);

const found = registry.getService("taproot.test.Sleeper");
if (found === undefined) throw new Error("test setup: taproot.test.Sleeper not in the registry");

/** Sleeper is the service's descriptor, typed as generated code would type it. */
export const Sleeper = found as GenService<{
  sleep: { methodKind: "unary"; input: typeof Int32ValueSchema; output: typeof StringValueSchema };
  ticks: {
    methodKind: "server_streaming";
    input: typeof Int32ValueSchema;
    output: typeof StringValueSchema;
  };
}>;
