// `mmgrad embed | search | caption | zeroshot`: a trained checkpoint used on images and
// texts given as files, folders, caption tables or on the command line.
#pragma once

namespace mmgrad::apps {

extern const char* const kEmbedHelp;
extern const char* const kSearchHelp;
extern const char* const kCaptionHelp;
extern const char* const kZeroshotHelp;

int embed_command(int argc, char** argv, int first);
int search_command(int argc, char** argv, int first);
int caption_command(int argc, char** argv, int first);
int zeroshot_command(int argc, char** argv, int first);

}  // namespace mmgrad::apps
