const express = require("express");
express().get("/", (req, res) => res.send("ok")).listen(process.env.PORT || 4000);
