{
  "targets": [
    {
      "target_name": "fastudp",
      "sources": ["fastudp.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
