//! `TaskType="JobStatusList"` (and `JobList`, which shares its paging):
//! `<Filter>` criteria, `<ListSettings>` order and paging, and the replies.

use super::budget::one_job_within_budget;
use super::{JobEntry, MessageError, TaskType, number, signed};
use crate::carbon::guid::Guid;
use crate::carbon::xml::Element;

/// Most jobs one list reply holds, whatever `LimitShow.DWD` asks: no reply
/// is unbounded; `TotalNrOfJobs.DWD` tells a client how many there are.
pub const MAX_LIST: usize = 1000;

/// Most criteria one filter may have.
pub const MAX_CRITERIA: usize = 64;

/// List jobs matching every criterion, ordered and paged.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobStatusList {
    pub criteria: Vec<Criterion>,
    pub settings: ListSettings,
}

/// One `Filter/Criteria_n`.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    pub parameter: String,
    pub operator: Operator,
    pub value: String,
}

keyword_enum! {
    /// How a criterion compares a job field with its value.
    pub enum Operator ("Operator") {
        Equal => "EQUAL",
        Like => "LIKE",
        LessThan => "LESSTHAN",
        GreaterThan => "GREATERTHAN",
    }
}

keyword_enum! {
    /// `ListSettings OrderByDirection`.
    pub enum Direction ("OrderByDirection") {
        Ascending => "ASCENDING",
        Descending => "DESCENDING",
    }
}

/// `<ListSettings OrderBy OrderByDirection LimitStart.DWD LimitShow.DWD/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListSettings {
    /// A job field; `None`: check-in order, oldest first.
    pub order_by: Option<String>,
    /// Default DESCENDING, as the manual has it (only with `order_by`).
    pub direction: Option<Direction>,
    /// The first entry to return, 0-based.
    pub start: usize,
    /// How many to return; `None` (`-1` or absent): all, up to [`MAX_LIST`].
    pub show: Option<usize>,
}

impl ListSettings {
    /// The page of `total` entries these settings select, as a range.
    pub fn page(&self, total: usize) -> std::ops::Range<usize> {
        let start = self.start.min(total);
        let show = self.show.unwrap_or(MAX_LIST).min(MAX_LIST);
        start..(start + show).min(total)
    }

    pub(super) fn parse(root: &Element, task: TaskType) -> Result<ListSettings, MessageError> {
        let Some(s) = root.find("ListSettings") else {
            return Ok(ListSettings::default());
        };
        let direction = s
            .value("OrderByDirection")
            .map(|d| d.parse().map_err(|e| MessageError::invalid(task, e)))
            .transpose()?;
        let start: Option<u32> = number(task, s, "LimitStart.DWD")?;
        let show = match s.get("LimitShow.DWD") {
            None => None,
            Some(text) => match signed(task, "LimitShow.DWD", text)? {
                n if n < 0 => None,
                n => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            },
        };
        Ok(ListSettings {
            order_by: s.value("OrderBy").map(|o| o.trim().to_owned()),
            direction,
            start: start.unwrap_or(0) as usize,
            show,
        })
    }

    fn write(&self, root: Element) -> Element {
        if *self == ListSettings::default() {
            return root;
        }
        let show = self.show.map_or(-1, |n| n as i64);
        root.child(
            Element::new("ListSettings")
                .opt_attr("OrderBy", self.order_by.as_deref())
                .opt_attr("OrderByDirection", self.direction)
                .attr("LimitStart.DWD", self.start)
                .attr("LimitShow.DWD", show),
        )
    }
}

impl JobStatusList {
    /// The filter the seed's page sends: one job by GUID.
    pub fn by_guid(guid: Guid) -> Self {
        JobStatusList {
            criteria: vec![Criterion {
                parameter: "Guid".to_owned(),
                operator: Operator::Equal,
                value: guid.to_string(),
            }],
            settings: ListSettings::default(),
        }
    }

    pub(super) fn parse(root: &Element) -> Result<JobStatusList, MessageError> {
        const TASK: TaskType = TaskType::JobStatusList;
        let criteria = match root.find("Filter") {
            None => Vec::new(),
            Some(filter) => filter
                .numbered("Criteria")
                .map_err(|e| MessageError::invalid(TASK, format!("Filter: {e}")))?
                .into_iter()
                .map(|c| {
                    let parameter = c.value("Parameter").ok_or_else(|| {
                        MessageError::invalid(
                            TASK,
                            format!("{}: the Parameter attribute is missing", c.name),
                        )
                    })?;
                    // The manual's default operator.
                    let operator = match c.value("Operator") {
                        None => Operator::Equal,
                        Some(o) => o.parse().map_err(|e| MessageError::invalid(TASK, e))?,
                    };
                    Ok(Criterion {
                        parameter: parameter.trim().to_owned(),
                        operator,
                        value: c.get("Value").unwrap_or_default().to_owned(),
                    })
                })
                .collect::<Result<Vec<_>, MessageError>>()?,
        };
        if criteria.len() > MAX_CRITERIA {
            return Err(MessageError::invalid(
                TASK,
                format!(
                    "the filter has {} criteria; at most {MAX_CRITERIA} are accepted",
                    criteria.len()
                ),
            ));
        }
        Ok(JobStatusList {
            criteria,
            settings: ListSettings::parse(root, TASK)?,
        })
    }

    pub(super) fn write(&self, root: Element) -> Element {
        let root = if self.criteria.is_empty() {
            root
        } else {
            root.child(Element::new("Filter").numbered_children(
                "Criteria",
                self.criteria.iter().map(|c| {
                    Element::new("Criteria")
                        .attr("Parameter", &c.parameter)
                        .attr("Operator", c.operator)
                        .attr("Value", &c.value)
                }),
            ))
        };
        self.settings.write(root)
    }
}

/// `JobList`: the same paging, no filter.
pub(super) fn write_job_list(settings: &ListSettings, root: Element) -> Element {
    settings.write(root)
}

/// A `JobStatusList` reply: one page of the matching jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusList {
    pub jobs: Vec<JobEntry>,
    /// How many jobs matched before paging (`TotalNrOfJobs.DWD`).
    pub total: usize,
}

impl StatusList {
    pub(super) fn to_xml(&self) -> String {
        let render = |jobs: &[&JobEntry]| {
            Element::new("Reply")
                .attr("Success", "TRUE")
                .child(
                    Element::new("JobStatusList")
                        .attr("NrOfJobs.DWD", jobs.len())
                        .attr("TotalNrOfJobs.DWD", self.total)
                        .numbered_children("Job", jobs.iter().map(|j| j.to_element("Job"))),
                )
                .to_xml()
        };
        match self.jobs.as_slice() {
            // The seed polls one job and parses the reply by position.
            [one] => one_job_within_budget(one, |job| render(&[job])),
            many => render(&many.iter().collect::<Vec<_>>()),
        }
    }

    pub(super) fn from_reply(reply: &Element) -> Result<StatusList, MessageError> {
        // A server with no matching job may omit the list altogether.
        let Some(list) = reply.find("JobStatusList") else {
            return Ok(StatusList {
                jobs: Vec::new(),
                total: 0,
            });
        };
        let jobs = list
            .numbered("Job")
            .map_err(|e| MessageError::Malformed(e.to_string()))?
            .into_iter()
            .map(JobEntry::from_element)
            .collect::<Result<Vec<_>, _>>()?;
        let total = list
            .get("TotalNrOfJobs.DWD")
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(jobs.len());
        Ok(StatusList { jobs, total })
    }
}

/// A `JobList` reply: name and GUID of each job in the page.
#[derive(Debug, Clone, PartialEq)]
pub struct JobListing {
    pub jobs: Vec<(Guid, String)>,
}

impl JobListing {
    pub(super) fn to_xml(&self) -> String {
        Element::new("Reply")
            .attr("Success", "TRUE")
            .attr("NrOfJobs.DWD", self.jobs.len())
            .child(
                Element::new("JobList").numbered_children(
                    "Job",
                    self.jobs.iter().map(|(guid, name)| {
                        Element::new("Job").attr("Name", name).attr("GUID", guid)
                    }),
                ),
            )
            .to_xml()
    }

    pub(super) fn from_reply(reply: &Element) -> Result<JobListing, MessageError> {
        let Some(list) = reply.find("JobList") else {
            return Ok(JobListing { jobs: Vec::new() });
        };
        let jobs = list
            .numbered("Job")
            .map_err(|e| MessageError::Malformed(e.to_string()))?
            .into_iter()
            .map(|j| {
                let guid = j
                    .get_any(&["GUID", "Guid"])
                    .ok_or_else(|| MessageError::Malformed(format!("{} has no GUID", j.name)))?
                    .parse()
                    .map_err(|e: crate::carbon::guid::InvalidGuid| {
                        MessageError::Malformed(e.to_string())
                    })?;
                Ok((guid, j.get("Name").unwrap_or_default().to_owned()))
            })
            .collect::<Result<_, MessageError>>()?;
        Ok(JobListing { jobs })
    }
}
