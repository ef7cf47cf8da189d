#!/bin/sh
echo a stand-in plugin for tests
