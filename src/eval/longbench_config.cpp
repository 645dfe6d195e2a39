#include "eval/longbench_config.h"

namespace lcllm {

namespace {

using M = LongBenchMetric;

// Templates as LongBench's config/dataset2prompt.json has them (they are data: a model sees these exact strings).
const std::vector<LongBenchDataset> kDatasets = {
    {"narrativeqa",
     "You are given a story, which can be either a novel or a movie script, and a question. Answer the question as "
     "concisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nStory: "
     "{context}\n\nNow, answer the question based on the story as concisely as you can, using a single phrase if "
     "possible. Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:",
     128, M::QA_F1, true, false, false},
    {"qasper",
     "You are given a scientific article and a question. Answer the question as concisely as you can, using a "
     "single phrase or sentence if possible. If the question cannot be answered based on the information in the "
     "article, write \"unanswerable\". If the question is a yes/no question, answer \"yes\", \"no\", or "
     "\"unanswerable\". Do not provide any explanation.\n\nArticle: {context}\n\n Answer the question based on the "
     "above article as concisely as you can, using a single phrase or sentence if possible. If the question cannot "
     "be answered based on the information in the article, write \"unanswerable\". If the question is a yes/no "
     "question, answer \"yes\", \"no\", or \"unanswerable\". Do not provide any explanation.\n\nQuestion: "
     "{input}\n\nAnswer:",
     128, M::QA_F1, true, false, false},
    {"multifieldqa_en",
     "Read the following text and answer briefly.\n\n{context}\n\nNow, answer the following question based on the "
     "above text, only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
     64, M::QA_F1, true, false, false},
    {"multifieldqa_zh",
     "阅读以下文字并用中文简短回答：\n\n{context}\n\n现在请基于上面的文章回答下面的问题，只告诉我答案，不要输出任何其他字词。"
     "\n\n问题：{input}\n回答：",
     64, M::QA_F1_ZH, true, false, false},
    {"hotpotqa",
     "Answer the question based on the given passages. Only give me the answer and do not output any other "
     "words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. "
     "Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
     32, M::QA_F1, true, false, false},
    {"2wikimqa",
     "Answer the question based on the given passages. Only give me the answer and do not output any other "
     "words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. "
     "Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
     32, M::QA_F1, true, false, false},
    {"musique",
     "Answer the question based on the given passages. Only give me the answer and do not output any other "
     "words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. "
     "Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
     32, M::QA_F1, true, false, false},
    {"dureader", "请基于给定的文章回答下述问题。\n\n文章：{context}\n\n请基于上述文章回答下面的问题。\n\n问题：{input}\n回答：",
     128, M::ROUGE_L_ZH, true, false, false},
    {"gov_report",
     "You are given a report by a government agency. Write a one-page summary of the report.\n\nReport:\n"
     "{context}\n\nNow, write a one-page summary of the report.\n\nSummary:",
     512, M::ROUGE_L, true, false, false},
    {"qmsum",
     "You are given a meeting transcript and a query containing a question or instruction. Answer the query in one "
     "or more sentences.\n\nTranscript:\n{context}\n\nNow, answer the query based on the above meeting transcript "
     "in one or more sentences.\n\nQuery: {input}\nAnswer:",
     512, M::ROUGE_L, true, false, false},
    {"multi_news",
     "You are given several news passages. Write a one-page summary of all news. \n\nNews:\n{context}\n\nNow, "
     "write a one-page summary of all the news.\n\nSummary:",
     512, M::ROUGE_L, true, false, false},
    {"vcsum", "下面有一段会议记录，请你阅读后，写一段总结，总结会议的内容。\n会议记录：\n{context}\n\n会议总结：", 512,
     M::ROUGE_L_ZH, true, false, false},
    {"trec",
     "Please determine the type of the question below. Here are some examples of questions.\n\n{context}\n{input}",
     64, M::CLASSIFICATION, false, true, false},
    {"triviaqa",
     "Answer the question based on the given passage. Only give me the answer and do not output any other words. "
     "The following are some examples.\n\n{context}\n\n{input}",
     32, M::QA_F1, false, true, false},
    {"samsum",
     "Summarize the dialogue into a few short sentences. The following are some examples.\n\n{context}\n\n{input}",
     128, M::ROUGE_L, false, true, true},
    {"lsht", "请判断给定新闻的类别，下面是一些例子。\n\n{context}\n{input}", 64, M::CLASSIFICATION, false, true, false},
    {"passage_count",
     "There are some paragraphs below sourced from Wikipedia. Some of them may be duplicates. Please carefully read "
     "these paragraphs and determine how many unique paragraphs there are after removing duplicates. In other "
     "words, how many non-repeating paragraphs are there in total?\n\n{context}\n\nPlease enter the final count of "
     "unique paragraphs after removing duplicates. The output format should only contain the number, such as 1, 2, "
     "3, and so on.\n\nThe final answer is: ",
     32, M::COUNT, true, false, false},
    {"passage_retrieval_en",
     "Here are 30 paragraphs from Wikipedia, along with an abstract. Please determine which paragraph the abstract "
     "is from.\n\n{context}\n\nThe following is an abstract.\n\n{input}\n\nPlease enter the number of the paragraph "
     "that the abstract is from. The answer format must be like \"Paragraph 1\", \"Paragraph 2\", etc.\n\nThe "
     "answer is: ",
     32, M::RETRIEVAL, true, false, false},
    {"passage_retrieval_zh",
     "以下是若干段落文字，以及其中一个段落的摘要。请确定给定的摘要出自哪一段。\n\n{context}\n\n下面是一个摘要\n\n{input}\n\n"
     "请输入摘要所属段落的编号。答案格式必须是\"段落1\"，\"段落2\"等格式\n\n答案是：",
     32, M::RETRIEVAL_ZH, true, false, false},
    {"lcc", "Please complete the code given below. \n{context}Next line of code:\n", 64, M::CODE_SIM, false, false,
     false},
    {"repobench-p", "Please complete the code given below. \n{context}{input}Next line of code:\n", 64, M::CODE_SIM,
     false, false, false},
};

}  // namespace

const char* longbench_metric_name(LongBenchMetric m) {
  switch (m) {
    case M::QA_F1: return "qa_f1_score";
    case M::QA_F1_ZH: return "qa_f1_zh_score";
    case M::ROUGE_L: return "rouge_score";
    case M::ROUGE_L_ZH: return "rouge_zh_score";
    case M::CLASSIFICATION: return "classification_score";
    case M::RETRIEVAL: return "retrieval_score";
    case M::RETRIEVAL_ZH: return "retrieval_zh_score";
    case M::COUNT: return "count_score";
    case M::CODE_SIM: return "code_sim_score";
  }
  return "?";
}

bool longbench_metric_supported(LongBenchMetric m) { return m != M::QA_F1_ZH && m != M::ROUGE_L_ZH; }

const std::vector<LongBenchDataset>& longbench_datasets() { return kDatasets; }

const LongBenchDataset* longbench_find_dataset(const std::string& name) {
  for (const auto& d : kDatasets) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

std::string longbench_dataset_of_file(const std::string& filename) {
  std::string base = filename;
  const size_t slash = base.find_last_of('/');
  if (slash != std::string::npos) base = base.substr(slash + 1);
  const size_t dot = base.find('.');
  if (dot != std::string::npos) base = base.substr(0, dot);
  if (base.size() > 2 && base.compare(base.size() - 2, 2, "_e") == 0 && !longbench_find_dataset(base)) {
    base = base.substr(0, base.size() - 2);
  }
  return base;
}

}  // namespace lcllm
